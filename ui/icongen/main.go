// Command icongen draws ncagent's tray icons: a cloud with a keyhole and a
// state badge, outlined so that it reads on light and dark panels. It writes
// one PNG (Linux, macOS) and one ICO (Windows) per state into ui/icons.
//
// Run it from the module root after changing the drawing:
//
//	go run ./ui/icongen
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("o", "ui/icons", "output directory")
	flag.Parse()
	if err := writeAll(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "icongen:", err)
		os.Exit(1)
	}
}

// writeAll writes <state>.png and <state>.ico for every state into dir.
func writeAll(dir string) error {
	for _, s := range states {
		p, err := encodePNG(s, pngSize)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, s.name+".png"), p, 0o644); err != nil {
			return fmt.Errorf("write png: %w", err)
		}
		var imgs [][]byte
		for _, size := range icoSizes {
			b, err := encodePNG(s, size)
			if err != nil {
				return err
			}
			imgs = append(imgs, b)
		}
		ico, err := encodeICO(imgs)
		if err != nil {
			return fmt.Errorf("icon %s: %w", s.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.name+".ico"), ico, 0o644); err != nil {
			return fmt.Errorf("write ico: %w", err)
		}
	}
	return nil
}

// pngSize is the size of the PNG icons; tray hosts scale them down.
const pngSize = 64

// icoSizes are the images in each ICO: the small and large tray sizes.
var icoSizes = []int{16, 24, 32, 48}

func encodePNG(s state, size int) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, render(s, size)); err != nil {
		return nil, fmt.Errorf("encode png %s %d: %w", s.name, size, err)
	}
	return buf.Bytes(), nil
}
