package executor

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/framing"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// APIPath is where the agent serves the executor API.
const APIPath = "/api/v1/executor"

// Codec returns mesos-go's codec for a wire name (WireProtobuf or WireJSON).
func Codec(wire string) encoding.Codec {
	if wire == WireJSON {
		return codecs.ByMediaType[codecs.MediaTypeJSON]
	}
	return codecs.ByMediaType[codecs.MediaTypeProtobuf]
}

// Encode marshals one message with codec.
func Encode(codec encoding.Codec, m encoding.Marshaler) ([]byte, error) {
	var buf bytes.Buffer
	if err := codec.NewEncoder(encoding.SinkWriter(&buf)).Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode unmarshals one message with codec.
func Decode(codec encoding.Codec, b []byte, m encoding.Unmarshaler) error {
	once := false
	src := func() framing.Reader {
		return framing.ReaderFunc(func() ([]byte, error) {
			if once {
				return nil, io.EOF
			}
			once = true
			return b, nil
		})
	}
	return codec.NewDecoder(src).Decode(m)
}

// EventDecoder reads events from a SUBSCRIBE response body with egret's RecordIO reader
// (no 4 MiB limit) and mesos-go's codec.
type EventDecoder struct {
	rr    *RecordReader
	codec encoding.Codec
}

// NewEventDecoder returns a decoder of the stream r.
func NewEventDecoder(r io.Reader, codec encoding.Codec, maxFrame int) *EventDecoder {
	return &EventDecoder{rr: NewRecordReader(r, maxFrame), codec: codec}
}

// FrameError is a record that arrived whole but does not decode as an event. The stream
// itself is intact.
type FrameError struct{ Err error }

func (e *FrameError) Error() string { return "undecodable event: " + e.Err.Error() }
func (e *FrameError) Unwrap() error { return e.Err }

// Next returns the next event. A *FrameError leaves the stream usable; any other error ends it.
func (d *EventDecoder) Next() (*executor.Event, error) {
	b, err := d.rr.ReadFrame()
	if err != nil {
		return nil, err
	}
	var ev executor.Event
	if err := Decode(d.codec, b, &ev); err != nil {
		return nil, &FrameError{Err: err}
	}
	return &ev, nil
}

// newUUID returns a random (version 4, RFC 4122) UUID in its 16-byte form.
func newUUID() []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

// ValidUUID reports whether b is a 16-byte RFC 4122 UUID with a known version, the form the
// agent accepts.
func ValidUUID(b []byte) bool {
	if len(b) != 16 {
		return false
	}
	v := b[6] >> 4
	return v >= 1 && v <= 5 && b[8]&0xc0 == 0x80
}

// client speaks to the agent over two connections: a dedicated one for the SUBSCRIBE
// stream (never reused, no overall timeout), and a pooled one for every other call.
type client struct {
	url     string
	codec   encoding.Codec
	token   string
	subHTTP *http.Client
	callHTP *http.Client
}

func newClient(cfg Config) *client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}
	sub := &http.Transport{
		Proxy:                 nil, // the agent is local; never go through a proxy
		DialContext:           dialer.DialContext,
		DisableKeepAlives:     true, // one stream, one connection, never handed to a call
		ResponseHeaderTimeout: 10 * time.Second,
		DisableCompression:    true,
	}
	calls := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}
	return &client{
		url:     "http://" + cfg.AgentEndpoint + APIPath,
		codec:   Codec(cfg.Wire),
		token:   cfg.AuthToken,
		subHTTP: &http.Client{Transport: sub}, // no Timeout: the body is an endless stream
		callHTP: &http.Client{Transport: calls, Timeout: 15 * time.Second},
	}
}

// StatusError is an agent's answer other than the one expected.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("agent answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

func (c *client) request(ctx context.Context, call *executor.Call) (*http.Request, error) {
	body, err := Encode(c.codec, call)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", call.Type, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", string(c.codec.Type))
	req.Header.Set("Accept", string(c.codec.Type))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return &StatusError{Code: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
}

// subscribe sends SUBSCRIBE and returns the open event stream.
func (c *client) subscribe(ctx context.Context, call *executor.Call) (io.ReadCloser, error) {
	req, err := c.request(ctx, call)
	if err != nil {
		return nil, err
	}
	resp, err := c.subHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); ct != string(c.codec.Type) {
		resp.Body.Close()
		return nil, fmt.Errorf("subscribe: stream content type %q, asked for %q", ct, c.codec.Type)
	}
	return resp.Body, nil
}

// send delivers a non-SUBSCRIBE call, which the agent answers with 202.
func (c *client) send(ctx context.Context, call *executor.Call) error {
	req, err := c.request(ctx, call)
	if err != nil {
		return err
	}
	resp, err := c.callHTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return statusError(resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return nil
}

// retryable reports whether a failed SUBSCRIBE is worth repeating: transport errors, and
// the agent's 503 (recovering) and 404 (routes not up yet).
func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code == http.StatusServiceUnavailable || se.Code == http.StatusNotFound
	}
	return true
}
