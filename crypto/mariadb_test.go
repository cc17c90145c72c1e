package crypto_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

func mariadbFixtureKeys(t *testing.T) keysrc.Source {
	src, err := keysrc.OpenMariaDBKeyFile(fixture(t, "mariadb-10.11-encrypted", "keys", "keys.txt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// The real MariaDB 10.11 binlogs give back their plaintext: the markers of dml.sql appear,
// every event's checksum and end_log_pos hold, and small reads agree with large ones.
func TestMariaDBFixtures(t *testing.T) {
	keys := mariadbFixtureKeys(t)
	markers := map[string][]string{
		"mariadb-bin.000001": {"secret-plaintext-marker-ALPHA", "updated-marker-BETA", "statement-marker-GAMMA"},
		"mariadb-bin.000002": {"erin"},
		"mariadb-bin.000003": {},
	}
	for name, want := range markers {
		t.Run(name, func(t *testing.T) {
			enc := readFile(t, fixture(t, "mariadb-10.11-encrypted", "aes_cbc", name))
			r, err := openBytes(t, name, enc, keys, crypto.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != crypto.KindMariaDBBinlog || r.Size() != int64(len(enc)) {
				t.Fatalf("kind %s, size %d of %d", r.Kind, r.Size(), len(enc))
			}
			plain := readAll(t, r)
			for _, m := range want {
				if !bytes.Contains(plain, []byte(m)) || bytes.Contains(enc, []byte(m)) {
					t.Errorf("marker %q: in view %v, in ciphertext %v", m, bytes.Contains(plain, []byte(m)), bytes.Contains(enc, []byte(m)))
				}
			}
			if n, err := tests.ParseBinlog(bytes.NewReader(plain)); err != nil || n < 4 {
				t.Fatalf("go-mysql: %d events, %v", n, err)
			}
			buf := make([]byte, 64)
			for off := 0; off < len(plain); off += 7 {
				for _, n := range []int{1, 13, 64} {
					got, _ := r.ReadAt(buf[:n], int64(off))
					if !bytes.Equal(buf[:got], plain[off:min(off+n, len(plain))]) {
						t.Fatalf("ReadAt(%d, %d) differs", n, off)
					}
				}
			}
		})
	}
}

func TestMariaDBWrongAndMissingKey(t *testing.T) {
	enc := readFile(t, fixture(t, "mariadb-10.11-encrypted", "aes_cbc", "mariadb-bin.000001"))
	key2, _ := mariadbFixtureKeys(t).Lookup("2", "")
	if _, err := openBytes(t, "mariadb-bin.000001", enc, staticKeys{"1": key2.Value}, crypto.Options{}); !errors.Is(err, crypto.ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := openBytes(t, "mariadb-bin.000001", enc, staticKeys{}, crypto.Options{}); !errors.Is(err, crypto.ErrMissingKey) {
		t.Fatalf("missing key: %v", err)
	}
}

// mariadbEncrypt writes a plain binlog the way MariaDB's writer does, from formats.md: a
// Start_encryption event after the Format_description event, then every event encrypted.
// It returns the file and the view mysqllogfs must show.
func mariadbEncrypt(t *testing.T, plain, key []byte, ctr bool) (file, view []byte) {
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	fdeLen := int(binary.LittleEndian.Uint32(plain[4+9:]))
	head := plain[:4+fdeLen]
	nonce := bytes.Repeat([]byte{0x5e}, 12)
	const startLen = 19 + 1 + 4 + 12 + 4
	start := make([]byte, startLen)
	binary.LittleEndian.PutUint32(start[0:], binary.LittleEndian.Uint32(plain[4:]))
	start[4] = 164
	binary.LittleEndian.PutUint32(start[5:], 1)
	binary.LittleEndian.PutUint32(start[9:], startLen)
	binary.LittleEndian.PutUint32(start[13:], uint32(len(head)+startLen))
	start[19] = 1
	binary.LittleEndian.PutUint32(start[20:], 1)
	copy(start[24:], nonce)
	binary.LittleEndian.PutUint32(start[36:], crc32.ChecksumIEEE(start[:36]))
	file = append(append([]byte(nil), head...), start...)
	ignorable := append([]byte(nil), start...)
	ignorable[4], ignorable[17] = 28, ignorable[17]|0x80
	clear(ignorable[19:])
	binary.LittleEndian.PutUint32(ignorable[36:], crc32.ChecksumIEEE(ignorable[:36]))
	view = append(append([]byte(nil), head...), ignorable...)
	for pos := len(head); pos < len(plain); {
		size := int(binary.LittleEndian.Uint32(plain[pos+9:]))
		ev := append([]byte(nil), plain[pos:pos+size]...)
		at := len(file)
		binary.LittleEndian.PutUint32(ev[13:], uint32(at+size)) // positions move by the inserted event
		binary.LittleEndian.PutUint32(ev[size-4:], crc32.ChecksumIEEE(ev[:size-4]))
		view = append(view, ev...)
		iv := append(append([]byte(nil), nonce...), binary.LittleEndian.AppendUint32(nil, uint32(at))...)
		p := append([]byte(nil), ev...)
		copy(p[9:13], p[0:4])
		c := p[4:]
		if ctr {
			cipher.NewCTR(block, iv).XORKeyStream(c, c)
		} else {
			whole := len(c) / 16 * 16
			cipher.NewCBCEncrypter(block, iv).CryptBlocks(c[:whole], c[:whole])
			var pad [16]byte
			block.Encrypt(pad[:], iv)
			for i := range c[whole:] {
				c[whole+i] ^= pad[i]
			}
		}
		out := make([]byte, size)
		copy(out[0:4], c[5:9])
		copy(out[4:9], c[0:5])
		binary.LittleEndian.PutUint32(out[9:], uint32(size))
		copy(out[13:], c[9:])
		file = append(file, out...)
		pos += size
	}
	return file, view
}

// AES-CBC and AES-CTR with 128-, 192- and 256-bit keys, events of every length.
func TestMariaDBCiphersAndKeySizes(t *testing.T) {
	var plain bytes.Buffer
	sample.Binlog(&plain, 64<<10, 3, "binlog.000002")
	for _, size := range []int{16, 24, 32} {
		for _, ctr := range []bool{false, true} {
			t.Run(fmt.Sprintf("key=%d/ctr=%v", size*8, ctr), func(t *testing.T) {
				key := bytes.Repeat([]byte{byte(size)}, size)
				file, view := mariadbEncrypt(t, plain.Bytes(), key, ctr)
				r, err := openBytes(t, "mariadb-bin.000001", file, staticKeys{"1": key}, crypto.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, r); !bytes.Equal(got, view) {
					t.Fatalf("view differs (%d vs %d bytes)", len(got), len(view))
				}
				if n, err := tests.ParseBinlog(bytes.NewReader(view)); err != nil || n < 10 {
					t.Fatalf("go-mysql on the expected view: %d events, %v", n, err)
				}
				// A binlog still being written: the cut event is left out until it is whole, and
				// when the file has grown its index is continued, not rebuilt.
				cut, err := openBytes(t, "mariadb-bin.000001", file[:len(file)-10], staticKeys{"1": key}, crypto.Options{})
				if err != nil || cut.Size() >= int64(len(file)) || !bytes.Equal(readAll(t, cut), view[:cut.Size()]) {
					t.Fatalf("cut file: %v, size %d", err, cut.Size())
				}
				grown, err := openBytes(t, "mariadb-bin.000001", file, staticKeys{"1": key}, crypto.Options{Previous: cut})
				if err != nil || !bytes.Equal(readAll(t, grown), view) {
					t.Fatalf("grown file: %v", err)
				}
			})
		}
	}
}

func TestMariaDBKeyFiles(t *testing.T) {
	dir := t.TempDir()
	text := []byte("# keys\n1;" + "00112233445566778899aabbccddeeff" + "\n\n2;" + "00112233445566778899AABBCCDDEEFF0011223344556677" + "\n")
	plainPath := filepath.Join(dir, "keys.txt")
	os.WriteFile(plainPath, text, 0o600)
	src, err := keysrc.OpenMariaDBKeyFile(plainPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := src.Lookup("2", ""); err != nil || len(k.Value) != 24 {
		t.Fatalf("key 2: %v", err)
	}
	// Encrypted by the real openssl command, as MariaDB's documentation does it.
	encPath := filepath.Join(dir, "keys.enc")
	enc := run(t, text, []string{"FILEKEY=the-filekey"}, "openssl", "enc", "-aes-256-cbc", "-md", "sha1", "-pass", "env:FILEKEY")
	os.WriteFile(encPath, enc, 0o600)
	src, err = keysrc.OpenMariaDBKeyFile(encPath, func() ([]byte, error) { return []byte("the-filekey"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if k, err := src.Lookup("1", ""); err != nil || len(k.Value) != 16 {
		t.Fatalf("key 1 from the encrypted file: %v", err)
	}
	if _, err := keysrc.OpenMariaDBKeyFile(encPath, func() ([]byte, error) { return []byte("wrong"), nil }); err == nil {
		t.Fatal("a wrong filekey opened the file")
	}
	for name, bad := range map[string]string{"no key 1": "2;00112233445566778899aabbccddeeff\n", "bad hex": "1;zz\n", "bad line": "hello\n"} {
		os.WriteFile(plainPath, []byte(bad), 0o600)
		if _, err := keysrc.OpenMariaDBKeyFile(plainPath, nil); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
