package h264test

import "github.com/bluenviron/mediacommon/v2/pkg/bits"

// SPS320x240 returns the sequence parameter set that libx264 wrote for a
// 320x240 30 fps High profile stream (level 1.3, VUI timing 60/1).
func SPS320x240() []byte {
	return []byte{
		0x67, 0x64, 0x00, 0x0d, 0xac, 0xb2, 0x02, 0x83, 0xf6, 0x02, 0x20, 0x00,
		0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x81, 0xe2, 0x85, 0x49,
	}
}

// PPS320x240 returns the picture parameter set that goes with SPS320x240.
func PPS320x240() []byte { return []byte{0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0} }

// SPSNoVUI returns a Baseline 320x240 sequence parameter set without VUI,
// so without a frame rate.
func SPSNoVUI() []byte { return BaselineSPS(320, 240) }

// BaselineSPS builds a Constrained Baseline level 3.0 sequence parameter
// set without VUI for a picture of whole macroblocks.
func BaselineSPS(width, height int) []byte {
	buf := make([]byte, 32)
	pos := 0
	w := func(v uint64, n int) { bits.WriteBitsUnsafe(buf, &pos, v, n) }
	ue := func(v uint64) {
		v++
		n := 0
		for x := v; x > 1; x >>= 1 {
			n++
		}
		w(0, n)
		w(v, n+1)
	}
	w(0x67, 8) // NAL header: nal_ref_idc 3, type 7
	w(66, 8)   // profile_idc Baseline
	w(0xc0, 8) // constraint_set0/1
	w(30, 8)   // level_idc 3.0
	ue(0)      // seq_parameter_set_id
	ue(0)      // log2_max_frame_num_minus4
	ue(2)      // pic_order_cnt_type
	ue(1)      // max_num_ref_frames
	w(0, 1)    // gaps_in_frame_num_value_allowed_flag
	ue(uint64(width/16 - 1))
	ue(uint64(height/16 - 1))
	w(1, 1) // frame_mbs_only_flag
	w(1, 1) // direct_8x8_inference_flag
	w(0, 1) // frame_cropping_flag
	w(0, 1) // vui_parameters_present_flag
	w(1, 1) // rbsp_stop_one_bit
	return buf[:(pos+7)/8]
}

// NALU returns a NAL unit behind a 4-byte start code.
func NALU(header byte, payload ...byte) []byte {
	return append([]byte{0, 0, 0, 1, header}, payload...)
}

// Slice returns a slice NAL unit (type 1 with ref 2 for nonIDR, type 5
// for IDR) behind a 4-byte start code, with first_mb_in_slice set and a
// few payload bytes that contain no zero.
func Slice(idr bool, firstMB uint32, payload ...byte) []byte {
	header := byte(0x41)
	if idr {
		header = 0x65
	}
	buf := make([]byte, 8)
	pos := 0
	v := uint64(firstMB) + 1
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	bits.WriteBitsUnsafe(buf, &pos, 0, n)
	bits.WriteBitsUnsafe(buf, &pos, v, n+1)
	bits.WriteBitsUnsafe(buf, &pos, 1, 1) // something non-zero after it
	b := buf[:(pos+7)/8]
	out := append([]byte{0, 0, 0, 1, header}, b...)
	if len(payload) == 0 {
		payload = []byte{0x11, 0x22, 0x33}
	}
	return append(out, payload...)
}

// Join concatenates byte strings.
func Join(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
