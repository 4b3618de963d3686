//go:build e2e

package thunderbird

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math/bits"
)

// xwdHeader is the fixed part of an X Window Dump (XWDFileHeader of
// X11/XWDFile.h): 25 big-endian 32-bit fields, then the window name up to
// HeaderSize, then NColors colormap entries of 12 bytes, then the pixels.
type xwdHeader struct {
	HeaderSize, FileVersion, PixmapFormat, PixmapDepth  uint32
	PixmapWidth, PixmapHeight, XOffset, ByteOrder       uint32
	BitmapUnit, BitmapBitOrder, BitmapPad, BitsPerPixel uint32
	BytesPerLine, VisualClass                           uint32
	RedMask, GreenMask, BlueMask                        uint32
	BitsPerRGB, ColormapEntries, NColors                uint32
	WindowWidth, WindowHeight, WindowX, WindowY         uint32
	WindowBorderWidth                                   uint32
}

const (
	xwdHeaderLen   = 100
	xwdVersion     = 7
	xwdZPixmap     = 2
	xwdTrueColor   = 4
	xwdDirectColor = 5
	xwdColorLen    = 12
	// xwdMaxSide bounds the image so a corrupt header cannot ask for
	// gigabytes.
	xwdMaxSide = 1 << 14
)

var errXWD = errors.New("not a supported xwd image")

// decodeXWD reads a TrueColor ZPixmap X Window Dump of 24 or 32 bits per
// pixel, the format Xvfb keeps its screen in with -fbdir.
func decodeXWD(data []byte) (image.Image, error) {
	var h xwdHeader
	if len(data) < xwdHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the header", errXWD, len(data))
	}
	fields := []*uint32{&h.HeaderSize, &h.FileVersion, &h.PixmapFormat, &h.PixmapDepth,
		&h.PixmapWidth, &h.PixmapHeight, &h.XOffset, &h.ByteOrder,
		&h.BitmapUnit, &h.BitmapBitOrder, &h.BitmapPad, &h.BitsPerPixel,
		&h.BytesPerLine, &h.VisualClass, &h.RedMask, &h.GreenMask, &h.BlueMask,
		&h.BitsPerRGB, &h.ColormapEntries, &h.NColors,
		&h.WindowWidth, &h.WindowHeight, &h.WindowX, &h.WindowY, &h.WindowBorderWidth}
	for i, f := range fields {
		*f = binary.BigEndian.Uint32(data[4*i:])
	}
	switch {
	case h.FileVersion != xwdVersion:
		return nil, fmt.Errorf("%w: version %d", errXWD, h.FileVersion)
	case h.PixmapFormat != xwdZPixmap:
		return nil, fmt.Errorf("%w: pixmap format %d", errXWD, h.PixmapFormat)
	case h.VisualClass != xwdTrueColor && h.VisualClass != xwdDirectColor:
		return nil, fmt.Errorf("%w: visual class %d", errXWD, h.VisualClass)
	case h.BitsPerPixel != 24 && h.BitsPerPixel != 32:
		return nil, fmt.Errorf("%w: %d bits per pixel", errXWD, h.BitsPerPixel)
	case h.PixmapWidth == 0 || h.PixmapHeight == 0 || h.PixmapWidth > xwdMaxSide || h.PixmapHeight > xwdMaxSide:
		return nil, fmt.Errorf("%w: size %dx%d", errXWD, h.PixmapWidth, h.PixmapHeight)
	case h.HeaderSize < xwdHeaderLen || h.NColors > 1<<16:
		return nil, fmt.Errorf("%w: header size %d, %d colors", errXWD, h.HeaderSize, h.NColors)
	case h.RedMask == 0 || h.GreenMask == 0 || h.BlueMask == 0:
		return nil, fmt.Errorf("%w: empty color mask", errXWD)
	}
	bpp := int(h.BitsPerPixel / 8)
	w, ht := int(h.PixmapWidth), int(h.PixmapHeight)
	if int(h.BytesPerLine) < w*bpp {
		return nil, fmt.Errorf("%w: %d bytes per line for %d pixels", errXWD, h.BytesPerLine, w)
	}
	start := int(h.HeaderSize) + int(h.NColors)*xwdColorLen
	need := start + int(h.BytesPerLine)*(ht-1) + w*bpp
	if len(data) < need {
		return nil, fmt.Errorf("%w: %d bytes, %d needed", errXWD, len(data), need)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, ht))
	for y := 0; y < ht; y++ {
		row := data[start+y*int(h.BytesPerLine):]
		for x := 0; x < w; x++ {
			p := row[x*bpp : x*bpp+bpp]
			var v uint32
			if h.ByteOrder == 0 { // LSBFirst
				for i := bpp - 1; i >= 0; i-- {
					v = v<<8 | uint32(p[i])
				}
			} else {
				for i := 0; i < bpp; i++ {
					v = v<<8 | uint32(p[i])
				}
			}
			img.SetRGBA(x, y, color.RGBA{channel(v, h.RedMask), channel(v, h.GreenMask), channel(v, h.BlueMask), 0xff})
		}
	}
	return img, nil
}

// channel extracts one color component under mask, scaled to 8 bits.
func channel(v, mask uint32) uint8 {
	shift := bits.TrailingZeros32(mask)
	width := bits.OnesCount32(mask >> shift)
	c := (v & mask) >> shift
	switch {
	case width >= 8:
		return uint8(c >> (width - 8))
	default:
		return uint8(c * 255 / (1<<width - 1))
	}
}
