package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image/png"
)

// encodeICO wraps PNG images in an ICO container. Windows Vista and later
// read PNG-compressed ICO entries of any size.
//
// Layout (all little endian): ICONDIR {reserved=0, type=1, count}, then one
// 16-byte ICONDIRENTRY per image {width, height (0 means 256), colors=0,
// reserved=0, planes=1, bpp=32, size, offset}, then the PNG data.
func encodeICO(pngs [][]byte) ([]byte, error) {
	if len(pngs) == 0 || len(pngs) > 0xffff {
		return nil, errors.New("ico: need 1 to 65535 images")
	}
	var buf bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, 6)
	le.PutUint16(hdr[2:], 1)
	le.PutUint16(hdr[4:], uint16(len(pngs)))
	buf.Write(hdr)
	offset := 6 + 16*len(pngs)
	for i, p := range pngs {
		cfg, err := png.DecodeConfig(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("ico: image %d: %w", i, err)
		}
		if cfg.Width < 1 || cfg.Width > 256 || cfg.Height < 1 || cfg.Height > 256 {
			return nil, fmt.Errorf("ico: image %d is %dx%d; want at most 256x256", i, cfg.Width, cfg.Height)
		}
		e := make([]byte, 16)
		e[0] = byte(cfg.Width)  // 256 wraps to 0, as the format wants
		e[1] = byte(cfg.Height) // likewise
		le.PutUint16(e[4:], 1)
		le.PutUint16(e[6:], 32)
		le.PutUint32(e[8:], uint32(len(p)))
		le.PutUint32(e[12:], uint32(offset))
		buf.Write(e)
		offset += len(p)
	}
	for _, p := range pngs {
		buf.Write(p)
	}
	return buf.Bytes(), nil
}
