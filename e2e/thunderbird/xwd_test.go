//go:build e2e

package thunderbird

import (
	"encoding/binary"
	"image/color"
	"testing"
)

// makeXWD builds an X Window Dump of w×h 32-bit pixels (LSBFirst, masks
// of a 24-bit TrueColor visual, as Xvfb writes) with a window name.
func makeXWD(w, h int, px func(x, y int) uint32) []byte {
	name := []byte("Xvfb main window\x00")
	hdr := make([]byte, xwdHeaderLen)
	fields := []uint32{uint32(xwdHeaderLen + len(name)), xwdVersion, xwdZPixmap, 24,
		uint32(w), uint32(h), 0, 0, 32, 0, 32, 32,
		uint32(4 * w), xwdTrueColor, 0xff0000, 0x00ff00, 0x0000ff,
		8, 256, 1, uint32(w), uint32(h), 0, 0, 0}
	for i, f := range fields {
		binary.BigEndian.PutUint32(hdr[4*i:], f)
	}
	data := append(hdr, name...)
	data = append(data, make([]byte, xwdColorLen)...) // one colormap entry
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			data = binary.LittleEndian.AppendUint32(data, px(x, y))
		}
	}
	return data
}

func TestDecodeXWD(t *testing.T) {
	data := makeXWD(3, 2, func(x, y int) uint32 { return uint32(x*0x40)<<16 | uint32(y*0x80)<<8 | 0x11 })
	img, err := decodeXWD(data)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 3 || b.Dy() != 2 {
		t.Fatalf("decodeXWD: size %v, want 3x2", b)
	}
	for _, c := range []struct {
		x, y int
		want color.RGBA
	}{{0, 0, color.RGBA{0, 0, 0x11, 0xff}}, {2, 1, color.RGBA{0x80, 0x80, 0x11, 0xff}}} {
		if got := color.RGBAModel.Convert(img.At(c.x, c.y)).(color.RGBA); got != c.want {
			t.Errorf("decodeXWD: pixel (%d,%d) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
	for name, bad := range map[string][]byte{
		"short":     data[:50],
		"truncated": data[:len(data)-1],
	} {
		if _, err := decodeXWD(bad); err == nil {
			t.Errorf("decodeXWD(%s) succeeded, want an error", name)
		}
	}
}

func TestChannel(t *testing.T) {
	for _, c := range []struct {
		v, mask uint32
		want    uint8
	}{{0xff0000, 0xff0000, 0xff}, {0x1f << 11, 0xf800, 0xff}, {0x10 << 11, 0xf800, 0x83}, {0x3ff << 20, 0x3ff00000, 0xff}} {
		if got := channel(c.v, c.mask); got != c.want {
			t.Errorf("channel(%#x, %#x) = %#x, want %#x", c.v, c.mask, got, c.want)
		}
	}
}

// FuzzDecodeXWD: decodeXWD reads files Xvfb writes while it draws; no
// input may make it panic or allocate beyond its size bound.
func FuzzDecodeXWD(f *testing.F) {
	f.Add(makeXWD(2, 2, func(x, y int) uint32 { return 0xabcdef }))
	f.Add(makeXWD(1, 1, func(x, y int) uint32 { return 0 })[:xwdHeaderLen])
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodeXWD(data)
		if err == nil && (img.Bounds().Dx() > xwdMaxSide || img.Bounds().Dy() > xwdMaxSide) {
			t.Fatalf("decodeXWD: image %v over the bound", img.Bounds())
		}
	})
}
