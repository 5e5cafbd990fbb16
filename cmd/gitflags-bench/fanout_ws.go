package main

// A minimal websocket client (RFC 6455) for the fanout mode's subscribers:
// the handshake, masked text frames out, and frames in through one
// buffered reader, nothing per message but the payload. With thousands of
// subscribers on a core shared with nothing else, the tool's time per
// message decides how soon it reads the last one; a general client
// (coder/websocket) cost it about as much per message as the server's
// fan-out, which added to the latencies measured.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// wsClient is one client connection.
type wsClient struct {
	nc  net.Conn
	br  *bufio.Reader
	wmu sync.Mutex // writes (the subscribe message, pongs)
}

// wsCloseError is a close frame received.
type wsCloseError struct {
	Code   int
	Reason string
}

func (e *wsCloseError) Error() string {
	return fmt.Sprintf("closed by the server: %d %s", e.Code, e.Reason)
}

// wsHandshakeError is a refused upgrade.
type wsHandshakeError struct{ Status int }

func (e *wsHandshakeError) Error() string { return fmt.Sprintf("upgrade refused: HTTP %d", e.Status) }

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsDial connects to rawURL (ws://host:port/path) with header and upgrades.
func wsDial(ctx context.Context, rawURL string, header http.Header) (*wsClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "ws" {
		return nil, fmt.Errorf("%q: not a ws:// URL", rawURL)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}, ProtoMajor: 1, ProtoMinor: 1}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	if err := req.Write(nc); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		nc.Close()
		return nil, err
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + wsGUID))
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		nc.Close()
		return nil, &wsHandshakeError{Status: resp.StatusCode}
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		nc.Close()
		return nil, errors.New("upgrade: wrong Sec-WebSocket-Accept")
	}
	_ = nc.SetDeadline(time.Time{})
	return &wsClient{nc: nc, br: br}, nil
}

// writeFrame writes one final, masked frame.
func (c *wsClient) writeFrame(op byte, payload []byte) error {
	n := len(payload)
	f := make([]byte, 0, 14+n)
	f = append(f, 0x80|op)
	switch {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n < 1<<16:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = binary.BigEndian.AppendUint64(append(f, 0x80|127), uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i&3])
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(f)
	return err
}

// WriteText writes a text message.
func (c *wsClient) WriteText(p []byte) error { return c.writeFrame(0x1, p) }

// ReadMessage returns the next data message's payload, answering pings;
// a close frame ends it with a *wsCloseError.
func (c *wsClient) ReadMessage(limit int) ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, err
		}
		fin, op, n := h[0]&0x80 != 0, h[0]&0x0f, uint64(h[1]&0x7f)
		if h[1]&0x80 != 0 || h[0]&0x70 != 0 {
			return nil, errors.New("a masked frame or reserved bits from the server")
		}
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(c.br, e[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(c.br, e[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(e[:])
		}
		if n+uint64(len(msg)) > uint64(limit) {
			return nil, fmt.Errorf("a message over %d bytes", limit)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return nil, err
		}
		switch op {
		case 0x8: // close
			ce := &wsCloseError{Code: 1005}
			if len(payload) >= 2 {
				ce.Code, ce.Reason = int(binary.BigEndian.Uint16(payload)), string(payload[2:])
			}
			_ = c.writeFrame(0x8, payload[:min(len(payload), 2)])
			return nil, ce
		case 0x9: // ping
			if err := c.writeFrame(0xA, payload); err != nil {
				return nil, err
			}
			continue
		case 0xA: // pong
			continue
		}
		if msg == nil {
			msg = payload
		} else {
			msg = append(msg, payload...)
		}
		if fin {
			return msg, nil
		}
	}
}

// Close closes the connection without a close handshake.
func (c *wsClient) Close() error { return c.nc.Close() }
