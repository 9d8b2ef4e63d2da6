//go:build !unix

package passthrough

import (
	"context"
	"errors"
	"os"
)

func openFIFO(ctx context.Context, path string) (*os.File, error) {
	return nil, errors.New("named pipes need a unix system")
}
