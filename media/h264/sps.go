package h264

import (
	"errors"
	"fmt"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// ErrInvalidSPS means a sequence parameter set could not be read or
// describes an impossible picture.
var ErrInvalidSPS = errors.New("h264: invalid SPS")

// maxDimension bounds width and height: H.264 level 6.2 allows 8192x4320,
// and nothing a camera makes comes near 16384.
const maxDimension = 16384

// SPSInfo is what camd needs from a sequence parameter set.
type SPSInfo struct {
	// Width and Height are the picture size in pixels after cropping.
	Width, Height int
	// Profile is profile_idc: 66 Baseline, 77 Main, 100 High...
	Profile uint8
	// Constrained is constraint_set1_flag, which makes Baseline
	// Constrained Baseline.
	Constrained bool
	// Level is level_idc: ten times the level number (31 is level 3.1).
	Level uint8
	// FPS is the frame rate from the VUI timing information, or 0 when the
	// stream does not carry one.
	FPS float64
}

// ParseSPS reads a sequence parameter set NAL unit (without start code).
func ParseSPS(nalu []byte) (SPSInfo, error) {
	if len(nalu) == 0 || naluType(nalu) != naluSPS {
		return SPSInfo{}, fmt.Errorf("%w: not an SPS NAL unit", ErrInvalidSPS)
	}
	var sps mch264.SPS
	if err := sps.Unmarshal(nalu); err != nil {
		return SPSInfo{}, fmt.Errorf("%w: %w", ErrInvalidSPS, err)
	}
	// Width and Height compute in uint32 and wrap on absurd values: check
	// the fields they use first.
	if sps.PicWidthInMbsMinus1 >= maxDimension/16 || sps.PicHeightInMapUnitsMinus1 >= maxDimension/16 {
		return SPSInfo{}, fmt.Errorf("%w: picture too large", ErrInvalidSPS)
	}
	if c := sps.FrameCropping; c != nil && (c.LeftOffset > maxDimension || c.RightOffset > maxDimension ||
		c.TopOffset > maxDimension || c.BottomOffset > maxDimension) {
		return SPSInfo{}, fmt.Errorf("%w: cropping out of range", ErrInvalidSPS)
	}
	info := SPSInfo{
		Width:       sps.Width(),
		Height:      sps.Height(),
		Profile:     sps.ProfileIdc,
		Constrained: sps.ConstraintSet1Flag,
		Level:       sps.LevelIdc,
	}
	if info.Width <= 0 || info.Height <= 0 || info.Width > maxDimension || info.Height > maxDimension {
		return SPSInfo{}, fmt.Errorf("%w: cropping leaves no picture", ErrInvalidSPS)
	}
	if vui := sps.VUI; vui != nil && vui.TimingInfo != nil &&
		vui.TimingInfo.NumUnitsInTick > 0 && vui.TimingInfo.TimeScale > 0 {
		// Two ticks make a frame (ITU-T H.264 E.2.1).
		info.FPS = float64(vui.TimingInfo.TimeScale) / (2 * float64(vui.TimingInfo.NumUnitsInTick))
	}
	return info, nil
}

// ProfileName names the profile ("Main", "High"...), or gives its number.
func (i SPSInfo) ProfileName() string {
	switch i.Profile {
	case 66:
		if i.Constrained {
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		return "High"
	case 110:
		return "High 10"
	case 122:
		return "High 4:2:2"
	case 244:
		return "High 4:4:4 Predictive"
	}
	return fmt.Sprintf("profile %d", i.Profile)
}

// String describes the stream, as in "1280x720 High 3.1 30fps".
func (i SPSInfo) String() string {
	s := fmt.Sprintf("%dx%d %s %d.%d", i.Width, i.Height, i.ProfileName(), i.Level/10, i.Level%10)
	if i.FPS > 0 {
		s += fmt.Sprintf(" %.4gfps", i.FPS)
	}
	return s
}
