// Package hw drives a real board through periph.io: Open maps a
// board.Profile's parts to GPIO lines (found by HostLookup through the
// two generic Linux drivers it links: the GPIO character device, which
// covers every current board including the Raspberry Pi, and sysfs GPIO
// for vendor kernels older than 4.8; no SoC's memory-mapped driver is
// linked), applies each pin's polarity and bias, and falls back to
// polling where a line has no edge detection. The light sensor is a
// photo switch on a GPIO (PhotoSwitch) or an ADC read through Linux IIO
// (IIOLight).
//
// board/sim runs this same driver on periph's gpiotest pins.
package hw
