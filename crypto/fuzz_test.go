package crypto_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/tests"
)

func fixtureSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	filepath.WalkDir(tests.Fixtures(f), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(path); err == nil {
				seeds = append(seeds, b)
			}
		}
		return nil
	})
	return seeds
}

func FuzzParseBinlogHeader(f *testing.F) {
	for _, s := range fixtureSeeds(f) {
		f.Add(s[:min(len(s), 512)])
	}
	f.Add(header(1, 0x01, 3, 'a', 'b', 'c', 0x02))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := crypto.ParseBinlogHeader(b)
		if err == nil && len(h.KeyID) > 255 {
			t.Fatal("key ID longer than a length byte allows")
		}
	})
}

// FuzzOpen drives every container parser (binlog header, Salted__ containers, gzip members)
// through Open and a full read, with keys that fit the test writers.
func FuzzOpen(f *testing.F) {
	for _, s := range fixtureSeeds(f) {
		f.Add(s, uint8(0))
	}
	f.Add(encryptedBinlog(f), uint8(0))
	f.Add(encryptAudit(f, []byte("<?xml version=\"1.0\"?>\n<AUDIT>\n</AUDIT>\n"), true), uint8(1))
	f.Add(encryptAudit(f, []byte("[\n{}\n]\n"), false), uint8(2))
	names := []string{"binlog.000001", auditName, activeName, "audit.log.20231231T235959-1.enc", "audit.20240102T000000.log.gz", "audit.log.gz"}
	// Key 1 of the MariaDB fixtures' key file, so that their events decrypt.
	mariadbKey := mustHex("16a214fa018c33bdd843b099440735651572949af5a5d02ec70bccf6b16d9f15")
	keys := staticKeys{binlogKeyID: binlogMaster, auditKeyID: []byte(auditSecret), "1": mariadbKey}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		r, err := crypto.Open(bytes.NewReader(data), int64(len(data)), names[int(which)%len(names)], keys, crypto.Options{})
		if err != nil {
			return
		}
		io.Copy(io.Discard, io.NewSectionReader(r, 0, 1<<40))
		buf := make([]byte, 100)
		r.ReadAt(buf, r.Size()/2)
	})
}
