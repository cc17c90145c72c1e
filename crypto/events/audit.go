package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"time"
)

// Audit records keep their own field names and values. Two keys are added, which no record
// can carry: an XML name cannot start with "@", and the JSON formats' fields never do.
const (
	keyFile   = "@file"   // the log's name
	keyOffset = "@offset" // the record's first byte in the plaintext
)

// writeAudit writes the records of an audit log in any of the server's formats: XML NEW
// (fields as child elements), XML OLD (fields as attributes), a JSON array, or JSON lines.
func writeAudit(w io.Writer, r *bufio.Reader, opts Options) error {
	head, _ := r.Peek(64)
	head = bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case len(head) == 0:
		return nil
	case head[0] == '<':
		return writeXMLRecords(w, r, opts)
	case head[0] == '[' || head[0] == '{':
		return writeJSONRecords(w, r, opts)
	}
	return ErrNotALog
}

// endOfRecords judges where the records stopped: the end of a log still being written, or
// damage.
func endOfRecords(err error, opts Options) error {
	if cutShort(err) && opts.Unfinished {
		return nil
	}
	return badLog("%v", err)
}

// recordInRange applies the time bounds to a record's timestamp, in either of the servers'
// forms; a record without one is kept.
func recordInRange(opts *Options, stamp string) bool {
	if !opts.bounded() {
		return true
	}
	for _, layout := range []string{"2006-01-02T15:04:05 UTC", "2006-01-02 15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, stamp); err == nil {
			return opts.inRange(t)
		}
	}
	return true
}

// jsonTimestamp finds a JSON record's timestamp: "timestamp" at the top (MySQL) or inside
// "audit_record" (Percona).
func jsonTimestamp(record []byte) string {
	var r struct {
		Timestamp   string `json:"timestamp"`
		AuditRecord struct {
			Timestamp string `json:"timestamp"`
		} `json:"audit_record"`
	}
	json.Unmarshal(record, &r)
	if r.Timestamp != "" {
		return r.Timestamp
	}
	return r.AuditRecord.Timestamp
}
