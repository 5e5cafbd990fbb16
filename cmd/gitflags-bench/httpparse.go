package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http/httputil"
	"strconv"
)

// readResponse reads one HTTP/1.x response from br and discards its body,
// without allocating for the usual case (a Content-Length body). It returns
// the status, the number of body bytes, and whether the server will close
// the connection. Chunked bodies are decoded with httputil's chunked reader.
func readResponse(br *bufio.Reader, head bool) (status int, n int64, closeConn bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, 0, true, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 13 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, 0, true, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
	}
	status, err = strconv.Atoi(string(line[9:12])) // no allocation: the conversion is optimised away
	if err != nil || status < 100 {
		return 0, 0, true, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
	}
	closeConn = line[7] == '0' // HTTP/1.0 closes unless it says keep-alive
	length, chunked := int64(-1), false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errors.New("response header line too long")
			}
			return 0, 0, true, err
		}
		if len(line) <= 2 { // "\r\n": end of the header
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, true, fmt.Errorf("malformed header line %q", bytes.TrimSpace(line))
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || length < 0 {
				return 0, 0, true, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				closeConn = true
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				closeConn = false
			}
		}
	}
	switch {
	case head || status < 200 || status == 204 || status == 304:
		return status, 0, closeConn, nil
	case chunked:
		n, err = io.Copy(io.Discard, httputil.NewChunkedReader(br))
		if err != nil {
			return 0, n, true, err
		}
		for { // trailer, up to the final empty line
			line, err = br.ReadSlice('\n')
			if err != nil {
				return 0, n, true, err
			}
			if len(line) <= 2 {
				return status, n, closeConn, nil
			}
		}
	case length >= 0:
		d, err := br.Discard(int(length))
		return status, int64(d), closeConn, err
	default: // body up to the end of the connection
		n, err = io.Copy(io.Discard, br)
		return status, n, true, err
	}
}
