package main

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestIconsUpToDate checks that ui/icons holds what the generator draws
// now: run go run ./ui/icongen after changing the drawing.
func TestIconsUpToDate(t *testing.T) {
	for _, s := range states {
		t.Run(s.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "icons", s.name+".png"))
			if err != nil {
				t.Fatalf("read committed icon: %v (run go run ./ui/icongen)", err)
			}
			got, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("decode committed icon: %v", err)
			}
			if !samePixels(got, render(s, pngSize)) {
				t.Errorf("ui/icons/%s.png differs from the generator's drawing: run go run ./ui/icongen", s.name)
			}
		})
	}
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false
			}
		}
	}
	return true
}

// TestStatesDistinct checks that every state draws a different icon, at
// the smallest ICO size too.
func TestStatesDistinct(t *testing.T) {
	for _, size := range []int{16, pngSize} {
		for i := range states {
			for j := i + 1; j < len(states); j++ {
				if samePixels(render(states[i], size), render(states[j], size)) {
					t.Errorf("size %d: %s and %s draw the same icon", size, states[i].name, states[j].name)
				}
			}
		}
	}
}

func TestEncodeICO(t *testing.T) {
	var pngs [][]byte
	for _, size := range []int{16, 32, 256} {
		b, err := encodePNG(states[0], size)
		if err != nil {
			t.Fatal(err)
		}
		pngs = append(pngs, b)
	}
	ico, err := encodeICO(pngs)
	if err != nil {
		t.Fatalf("encodeICO: %v", err)
	}
	le := binary.LittleEndian
	if got := le.Uint16(ico[0:]); got != 0 {
		t.Errorf("reserved: got %d, want 0", got)
	}
	if got := le.Uint16(ico[2:]); got != 1 {
		t.Errorf("type: got %d, want 1 (icon)", got)
	}
	if got := le.Uint16(ico[4:]); got != 3 {
		t.Fatalf("count: got %d, want 3", got)
	}
	for i, want := range []int{16, 32, 0} {
		e := ico[6+16*i:]
		if int(e[0]) != want || int(e[1]) != want {
			t.Errorf("entry %d: got %dx%d, want %dx%d (0 means 256)", i, e[0], e[1], want, want)
		}
		if got := le.Uint16(e[6:]); got != 32 {
			t.Errorf("entry %d bpp: got %d, want 32", i, got)
		}
		size, off := le.Uint32(e[8:]), le.Uint32(e[12:])
		if int(off+size) > len(ico) {
			t.Fatalf("entry %d: data %d+%d past the end %d", i, off, size, len(ico))
		}
		if !bytes.Equal(ico[off:off+size], pngs[i]) {
			t.Errorf("entry %d: data is not the PNG given", i)
		}
	}
}

func TestEncodeICORefuses(t *testing.T) {
	big, err := encodePNG(states[0], 257)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][][]byte{
		"none":    nil,
		"not png": {[]byte("GIF89a")},
		"too big": {big},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := encodeICO(in); err == nil {
				t.Errorf("encodeICO: got no error, want one")
			}
		})
	}
}
