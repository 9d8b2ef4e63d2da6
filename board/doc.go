// Package board will hold the contracts for camera hardware (IR-cut
// filter, LEDs, buttons, PIR, light sensor), their periph.io drivers per
// board, and a simulated board. It is empty until the board issue lands.
package board
