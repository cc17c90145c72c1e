//go:build !amd64 || purego

package crypto

const haveWideAES = false

func ctrXORWide(rk *roundKeys, dst, src *byte, blocks int, lanes *[8]uint64) {
	panic("unreachable: no vector AES on this platform")
}

func cbcDecryptWide(rk *roundKeys, dst, src *byte, blocks int, iv *[16]byte) {
	panic("unreachable: no vector AES on this platform")
}
