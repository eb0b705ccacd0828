package main

import (
	"image"
	"image/color"
	"math"
)

// state is one tray icon: a badge color and symbol on the shared glyph.
type state struct {
	name   string
	badge  color.NRGBA
	symbol func(x, y float64) bool // in badge coordinates: centre 0,0, radius 1
	dim    bool                    // grey the cloud (nothing configured)
}

var (
	ink   = color.NRGBA{0x1f, 0x29, 0x37, 0xff} // outline and keyhole
	cloud = color.NRGBA{0xf8, 0xfa, 0xfc, 0xff}
	grey  = color.NRGBA{0xcb, 0xd5, 0xe1, 0xff}
	white = color.NRGBA{0xff, 0xff, 0xff, 0xff}
)

// states are the tray icons: the names match ui's iconState names.
var states = []state{
	{name: "ok", badge: color.NRGBA{0x15, 0x80, 0x3d, 0xff}, symbol: check},
	{name: "attention", badge: color.NRGBA{0xdc, 0x26, 0x26, 0xff}, symbol: bang},
	{name: "offline", badge: color.NRGBA{0x6b, 0x72, 0x80, 0xff}, symbol: dash},
	{name: "none", badge: color.NRGBA{0x1d, 0x4e, 0xd8, 0xff}, symbol: plus, dim: true},
}

// Symbols, drawn in the unit badge circle.
func check(x, y float64) bool {
	return segment(x, y, -0.5, 0.02, -0.15, 0.38) < 0.16 || segment(x, y, -0.15, 0.38, 0.5, -0.35) < 0.16
}

func bang(x, y float64) bool {
	return segment(x, y, 0, -0.55, 0, 0.12) < 0.15 || math.Hypot(x, y-0.45) < 0.15
}

func dash(x, y float64) bool { return segment(x, y, -0.5, 0, 0.5, 0) < 0.16 }

func plus(x, y float64) bool {
	return segment(x, y, -0.5, 0, 0.5, 0) < 0.15 || segment(x, y, 0, -0.5, 0, 0.5) < 0.15
}

// cloudDist is a signed distance (negative inside) to the cloud, in the
// 64-unit design space.
func cloudDist(x, y float64) float64 {
	d := math.Hypot(x-20, y-36) - 11
	d = math.Min(d, math.Hypot(x-33, y-26)-14)
	d = math.Min(d, math.Hypot(x-45, y-36)-11)
	d = math.Min(d, box(x, y, 20, 30, 45, 47))
	return d
}

// box is the signed distance to the axis-aligned box [x0,x1]×[y0,y1].
func box(x, y, x0, y0, x1, y1 float64) float64 {
	dx := math.Max(x0-x, x-x1)
	dy := math.Max(y0-y, y-y1)
	if dx <= 0 && dy <= 0 {
		return math.Max(dx, dy)
	}
	return math.Hypot(math.Max(dx, 0), math.Max(dy, 0))
}

// segment is the distance from (x,y) to the segment (ax,ay)-(bx,by).
func segment(x, y, ax, ay, bx, by float64) float64 {
	px, py := x-ax, y-ay
	vx, vy := bx-ax, by-ay
	t := math.Max(0, math.Min(1, (px*vx+py*vy)/(vx*vx+vy*vy)))
	return math.Hypot(px-t*vx, py-t*vy)
}

// Badge placement in design space.
const (
	badgeX, badgeY, badgeR = 48.0, 47.0, 13.0
	ringW                  = 2.5 // the gap between badge and cloud
	outlineW               = 3.0
)

// sample returns the colour at one point of the design space, or a zero
// colour for transparent.
func sample(s state, x, y float64) color.NRGBA {
	bd := math.Hypot(x-badgeX, y-badgeY)
	if bd < badgeR {
		if s.symbol((x-badgeX)/badgeR, (y-badgeY)/badgeR) {
			return white
		}
		return s.badge
	}
	if bd < badgeR+ringW {
		return color.NRGBA{} // cut-out ring separating the badge
	}
	d := cloudDist(x, y)
	switch {
	case d > outlineW:
		return color.NRGBA{}
	case d > 0:
		return ink
	}
	// Keyhole in the cloud.
	if math.Hypot(x-31, y-32) < 4.2 || (box(x, y, 29.3, 32, 32.7, 41) < 0) {
		return ink
	}
	if s.dim {
		return grey
	}
	return cloud
}

// render draws state s at size×size pixels with 4×4 supersampling.
func render(s state, size int) *image.NRGBA {
	const ss = 4
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	scale := 64.0 / float64(size)
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			var r, g, b, a float64
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					x := (float64(px) + (float64(sx)+0.5)/ss) * scale
					y := (float64(py) + (float64(sy)+0.5)/ss) * scale
					c := sample(s, x, y)
					al := float64(c.A) / 255
					r += float64(c.R) * al
					g += float64(c.G) * al
					b += float64(c.B) * al
					a += al
				}
			}
			if a == 0 {
				continue
			}
			img.SetNRGBA(px, py, color.NRGBA{
				R: uint8(math.Round(r / a)),
				G: uint8(math.Round(g / a)),
				B: uint8(math.Round(b / a)),
				A: uint8(math.Round(a / (ss * ss) * 255)),
			})
		}
	}
	return img
}
