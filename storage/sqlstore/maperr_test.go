package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/lib/pq"

	"github.com/latchkey/latchkey/storage"
)

// Errors of the database's state are storage.ErrUnavailable (callers
// answer 503), errors of the request are not.
func TestMapErrUnavailable(t *testing.T) {
	s := &SQLStore{}
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: none of the classified errors
	}{
		{"no rows", sql.ErrNoRows, storage.ErrNotFound},
		{"unique violation", &pq.Error{Code: "23505"}, storage.ErrDuplicate},
		{"serialization failure", &pq.Error{Code: "40001"}, storage.ErrConflict},
		{"admin shutdown", &pq.Error{Code: "57P01"}, storage.ErrUnavailable},
		{"cannot connect now", &pq.Error{Code: "57P03"}, storage.ErrUnavailable},
		{"too many connections", &pq.Error{Code: "53300"}, storage.ErrUnavailable},
		{"connection failure", &pq.Error{Code: "08006"}, storage.ErrUnavailable},
		{"value too long", &pq.Error{Code: "22001"}, nil},
		{"foreign key", &pq.Error{Code: "23503"}, nil},
		{"refused", fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), storage.ErrUnavailable},
		{"bad connection", driver.ErrBadConn, storage.ErrUnavailable},
		{"pool closed", sql.ErrConnDone, storage.ErrUnavailable},
		{"deadline", context.DeadlineExceeded, storage.ErrUnavailable},
		{"caller went away", context.Canceled, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := s.mapErr(tc.err)
			for _, e := range []error{storage.ErrNotFound, storage.ErrDuplicate, storage.ErrConflict, storage.ErrUnavailable} {
				if errors.Is(got, e) != (e == tc.want) {
					t.Fatalf("mapErr(%v) = %v: Is(%v) = %v", tc.err, got, e, errors.Is(got, e))
				}
			}
		})
	}
}
