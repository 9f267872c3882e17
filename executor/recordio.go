package executor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// DefaultMaxFrame is the largest RecordIO record the executor accepts on the SUBSCRIBE
// stream. mesos-go's own reader stops at 4 MiB, which a LAUNCH with large task data exceeds.
const DefaultMaxFrame = 64 << 20

// maxLengthDigits bounds the decimal length prefix (a uint64 has at most 20 digits).
const maxLengthDigits = 20

// StreamError is a broken RecordIO stream: a bad length, an oversized record, or an end of
// input inside a record. After it the stream cannot be resynchronised.
type StreamError struct {
	Offset int64 // byte offset of the record's first byte
	Msg    string
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("recordio: at byte %d: %s", e.Offset, e.Msg)
}

// RecordReader reads RecordIO records ("<decimal length>\n<payload>") incrementally, so each
// record is available as soon as its last byte arrives. It implements mesos-go's
// framing.Reader, so mesos-go's codecs decode what it reads.
type RecordReader struct {
	r      *bufio.Reader
	max    uint64
	offset int64
}

// NewRecordReader returns a reader of records no larger than max bytes (DefaultMaxFrame if
// max <= 0).
func NewRecordReader(r io.Reader, max int) *RecordReader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &RecordReader{r: bufio.NewReaderSize(r, 64<<10), max: uint64(max)}
}

// ReadFrame returns the next non-empty record. It returns io.EOF at a clean end of stream
// (between records) and a *StreamError for anything malformed.
func (rr *RecordReader) ReadFrame() ([]byte, error) {
	for {
		start := rr.offset
		var n uint64
		digits := 0
		for {
			c, err := rr.r.ReadByte()
			if err != nil {
				if errors.Is(err, io.EOF) {
					if digits == 0 {
						return nil, io.EOF
					}
					return nil, &StreamError{Offset: start, Msg: "end of stream inside a record length"}
				}
				return nil, err
			}
			rr.offset++
			if c == '\n' {
				break
			}
			if c < '0' || c > '9' {
				return nil, &StreamError{Offset: start, Msg: fmt.Sprintf("bad record length: byte %q is not a decimal digit", c)}
			}
			digits++
			if digits > maxLengthDigits {
				return nil, &StreamError{Offset: start, Msg: "bad record length: more than 20 digits"}
			}
			d := uint64(c - '0')
			if n > (^uint64(0)-d)/10 {
				return nil, &StreamError{Offset: start, Msg: "bad record length: overflows uint64"}
			}
			n = n*10 + d
		}
		if digits == 0 {
			return nil, &StreamError{Offset: start, Msg: "bad record length: empty"}
		}
		if n == 0 {
			continue // the docs say it never happens; skip it as Mesos' own readers do
		}
		if n > rr.max {
			return nil, &StreamError{Offset: start, Msg: "record of " + strconv.FormatUint(n, 10) +
				" bytes exceeds the limit of " + strconv.FormatUint(rr.max, 10)}
		}
		buf := make([]byte, n)
		got, err := io.ReadFull(rr.r, buf)
		rr.offset += int64(got)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, &StreamError{Offset: start, Msg: fmt.Sprintf("end of stream after %d of %d payload bytes", got, n)}
			}
			return nil, err
		}
		return buf, nil
	}
}

// AppendRecord appends one RecordIO record holding payload to dst.
func AppendRecord(dst, payload []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(payload)), 10)
	dst = append(dst, '\n')
	return append(dst, payload...)
}
