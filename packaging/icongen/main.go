// Command icongen draws the ncagent icon: a white key on a rounded blue
// square. One description of the shapes produces both the scalable
// packaging/icons/ncagent.svg and the 256x256 packaging/icons/ncagent.png,
// so the two never drift apart.
//
// Usage (from the repository root):
//
//	go run ./packaging/icongen [-out packaging/icons]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// Size is the edge of the icon in SVG user units and PNG pixels.
const Size = 256

var (
	background = color.NRGBA{0x00, 0x82, 0xc9, 0xff}
	foreground = color.NRGBA{0xff, 0xff, 0xff, 0xff}
)

// The shapes, in user units of a Size x Size canvas.
type roundRect struct{ x, y, w, h, r float64 }
type ring struct{ cx, cy, outer, inner float64 }

var (
	tile  = roundRect{16, 16, 224, 224, 48}
	bow   = ring{92, 128, 46, 19}
	shaft = roundRect{130, 115, 96, 26, 4}
	teeth = []roundRect{{180, 137, 16, 30, 3}, {206, 137, 16, 40, 3}}
)

func (q roundRect) contains(px, py float64) bool {
	if px < q.x || py < q.y || px > q.x+q.w || py > q.y+q.h {
		return false
	}
	// Distance to the inner rectangle whose corners are the arc centres.
	dx := math.Max(math.Max(q.x+q.r-px, px-(q.x+q.w-q.r)), 0)
	dy := math.Max(math.Max(q.y+q.r-py, py-(q.y+q.h-q.r)), 0)
	return dx*dx+dy*dy <= q.r*q.r
}

func (c ring) contains(px, py float64) bool {
	d := math.Hypot(px-c.cx, py-c.cy)
	return d <= c.outer && d >= c.inner
}

func isKey(px, py float64) bool {
	if bow.contains(px, py) || shaft.contains(px, py) {
		return true
	}
	for _, t := range teeth {
		if t.contains(px, py) {
			return true
		}
	}
	return false
}

// Draw renders the icon at size x size pixels with 4x4 supersampling.
func Draw(size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	const ss = 4
	scale := float64(Size) / float64(size)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			var tileN, keyN int
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					px := (float64(x) + (float64(sx)+0.5)/ss) * scale
					py := (float64(y) + (float64(sy)+0.5)/ss) * scale
					if tile.contains(px, py) {
						tileN++
						if isKey(px, py) {
							keyN++
						}
					}
				}
			}
			if tileN == 0 {
				continue
			}
			// Colour: the key's share of the covered samples over blue;
			// alpha: the tile's coverage.
			k := float64(keyN) / float64(tileN)
			mix := func(a, b uint8) uint8 { return uint8(math.Round(float64(a)*(1-k) + float64(b)*k)) }
			img.SetNRGBA(x, y, color.NRGBA{
				mix(background.R, foreground.R), mix(background.G, foreground.G), mix(background.B, foreground.B),
				uint8(math.Round(255 * float64(tileN) / ss / ss)),
			})
		}
	}
	return img
}

// SVG returns the same shapes as a scalable image.
func SVG() []byte {
	var b bytes.Buffer
	hex := func(c color.NRGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }
	rect := func(q roundRect, fill string) {
		fmt.Fprintf(&b, "  <rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" rx=\"%g\" fill=\"%s\"/>\n", q.x, q.y, q.w, q.h, q.r, fill)
	}
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", Size, Size, Size, Size)
	b.WriteString("  <title>ncagent</title>\n")
	rect(tile, hex(background))
	// The bow is a ring: a circle stroked with the ring's width.
	fmt.Fprintf(&b, "  <circle cx=\"%g\" cy=\"%g\" r=\"%g\" fill=\"none\" stroke=\"%s\" stroke-width=\"%g\"/>\n",
		bow.cx, bow.cy, (bow.outer+bow.inner)/2, hex(foreground), bow.outer-bow.inner)
	rect(shaft, hex(foreground))
	for _, t := range teeth {
		rect(t, hex(foreground))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// PNG returns the icon encoded as a size x size PNG.
func PNG(size int) ([]byte, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, Draw(size)); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return b.Bytes(), nil
}

func main() {
	out := flag.String("out", filepath.Join("packaging", "icons"), "directory to write ncagent.svg and ncagent.png into")
	flag.Parse()
	p, err := PNG(Size)
	if err == nil {
		err = os.WriteFile(filepath.Join(*out, "ncagent.png"), p, 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(*out, "ncagent.svg"), SVG(), 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "icongen: %v\n", err)
		os.Exit(1)
	}
}
