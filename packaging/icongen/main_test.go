package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedIconsAreGenerated checks that packaging/icons holds exactly
// what this generator draws: run `go run ./packaging/icongen` after a change.
func TestCommittedIconsAreGenerated(t *testing.T) {
	p, err := PNG(Size)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"ncagent.png": p, "ncagent.svg": SVG()} {
		got, err := os.ReadFile(filepath.Join("..", "icons", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output: run go run ./packaging/icongen", name)
		}
	}
}

func TestIconPixels(t *testing.T) {
	img, err := png.Decode(bytes.NewReader(must(PNG(Size))))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
		t.Fatalf("got %v, want 256x256", b)
	}
	tests := []struct {
		name       string
		x, y       int
		r, g, b, a uint32 // 8-bit
	}{
		{"transparent corner", 2, 2, 0, 0, 0, 0},
		{"rounded tile corner stays clear", 18, 18, 0, 0, 0, 0},
		{"blue tile", 40, 128, 0x00, 0x82, 0xc9, 0xff},
		{"hole of the bow", 92, 128, 0x00, 0x82, 0xc9, 0xff},
		{"white bow", 92, 92, 0xff, 0xff, 0xff, 0xff},
		{"white shaft", 160, 128, 0xff, 0xff, 0xff, 0xff},
		{"white tooth", 214, 170, 0xff, 0xff, 0xff, 0xff},
		{"gap between teeth", 201, 160, 0x00, 0x82, 0xc9, 0xff},
	}
	for _, tt := range tests {
		r, g, b, a := img.At(tt.x, tt.y).RGBA()
		if a == 0 {
			r, g, b = 0, 0, 0
		} else {
			// un-premultiply to 8-bit
			r, g, b = r*0xff/a, g*0xff/a, b*0xff/a
		}
		a >>= 8
		if r != tt.r || g != tt.g || b != tt.b || a != tt.a {
			t.Errorf("%s (%d,%d): got rgba(%d,%d,%d,%d), want rgba(%d,%d,%d,%d)", tt.name, tt.x, tt.y, r, g, b, a, tt.r, tt.g, tt.b, tt.a)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
