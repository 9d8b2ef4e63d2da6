// Package fielderr is camd's one error for a value that is not allowed:
// a key of the configuration file, a field of a board profile, a setting,
// a field of an API request. It says which field, the value given and
// what is allowed, so that a person can fix it and the API can answer
// {"error", "field", "value", "allowed"} (422) without knowing whose it
// is. Each package that refuses values keeps its own sentinel (Kind) for
// errors.Is.
package fielderr

import (
	"errors"
	"fmt"
)

// Error is a value that is not allowed.
type Error struct {
	// Scope names where the field lives, and starts the message:
	// "config", "settings", "pairing", "board: profile porch-cam".
	Scope string
	// Field is the key or field ("video.fps", "name").
	Field string
	// Value is the value given, as text: quoted, or JSON.
	Value string
	// Allowed says what is allowed, for a person.
	Allowed string
	// Kind is the refusing package's sentinel (errors.Is(err, Kind)).
	Kind error
	// Err is a more specific cause, when there is one; the message ends
	// with it.
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s: %s is not allowed (allowed: %s)", e.Scope, e.Field, e.Value, e.Allowed)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap makes errors.Is and errors.As see the kind and the cause.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Kind, e.Err} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// As returns the *Error in err's chain, if there is one.
func As(err error) (*Error, bool) {
	var fe *Error
	ok := errors.As(err, &fe)
	return fe, ok
}
