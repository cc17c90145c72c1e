package sample

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// AuditFormat is how audit records are written.
type AuditFormat string

const (
	AuditXML  AuditFormat = "xml"  // MySQL Enterprise Audit's NEW XML format (the default)
	AuditJSON AuditFormat = "json" // the JSON format of MySQL Enterprise Audit and Percona
)

// AuditLog writes at least size bytes of audit records drawn from seed. closed adds the
// closing "</AUDIT>" or "]" that the server writes only when it closes the file.
func AuditLog(w io.Writer, format AuditFormat, size int64, seed uint64, closed bool) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	cw := &countWriter{w: bw}
	rng := rand.New(rand.NewPCG(seed, 2))
	when := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	if format == AuditJSON {
		io.WriteString(cw, "[\n")
	} else {
		io.WriteString(cw, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<AUDIT>\n")
	}
	for id := 1; id == 1 || cw.n < size; id++ {
		when = when.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
		rec := auditRecord{id: id, when: when, conn: 8 + rng.IntN(40), user: users[rng.IntN(len(users))],
			sql: fmt.Sprintf("SELECT * FROM orders WHERE customer = 'customer-%d' /* %s */", rng.IntN(100000), words(rng, 2+rng.IntN(8)))}
		if format == AuditJSON {
			if id > 1 {
				io.WriteString(cw, ",\n")
			}
			rec.writeJSON(cw)
		} else {
			rec.writeXML(cw)
		}
	}
	if closed {
		if format == AuditJSON {
			io.WriteString(cw, "\n]\n")
		} else {
			io.WriteString(cw, "</AUDIT>\n")
		}
	}
	if cw.err != nil {
		return cw.err
	}
	return bw.Flush()
}

var users = []string{"root", "app", "reporting", "backup", "alice", "bob"}

type auditRecord struct {
	id   int
	when time.Time
	conn int
	user string
	sql  string
}

func (r auditRecord) writeXML(w io.Writer) {
	fmt.Fprintf(w, " <AUDIT_RECORD>\n  <TIMESTAMP>%s</TIMESTAMP>\n  <RECORD_ID>%d_%s</RECORD_ID>\n"+
		"  <NAME>Query</NAME>\n  <CONNECTION_ID>%d</CONNECTION_ID>\n  <STATUS>0</STATUS>\n"+
		"  <STATUS_CODE>0</STATUS_CODE>\n  <USER>%s[%s] @ localhost []</USER>\n  <OS_LOGIN/>\n"+
		"  <HOST>localhost</HOST>\n  <IP/>\n  <COMMAND_CLASS>select</COMMAND_CLASS>\n"+
		"  <SQLTEXT>%s</SQLTEXT>\n </AUDIT_RECORD>\n",
		r.when.Format("2006-01-02T15:04:05 UTC"), r.id, r.when.Format("2006-01-02T15:04:05"),
		r.conn, r.user, r.user, r.sql)
}

func (r auditRecord) writeJSON(w io.Writer) {
	fmt.Fprintf(w, `{ "timestamp": "%s", "id": %d, "class": "general", "event": "status", `+
		`"connection_id": %d, "account": { "user": "%s", "host": "localhost" }, `+
		`"login": { "user": "%s", "os": "", "ip": "", "proxy": "" }, `+
		`"general_data": { "command": "Query", "sql_command": "select", "query": "%s", "status": 0 } }`,
		r.when.Format("2006-01-02 15:04:05"), r.id, r.conn, r.user, r.user, r.sql)
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}
