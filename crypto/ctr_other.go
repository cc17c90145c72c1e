//go:build !amd64 || purego

package crypto

const haveWideCTR = false

func ctrXORWide(rk *roundKeys, dst, src *byte, blocks int, lanes *[8]uint64) {
	panic("unreachable: no vector AES on this platform")
}
