package crypto

// WindowBudgetUsed is, for tests, how many bytes of gzip index windows are charged.
func WindowBudgetUsed() int64 {
	windows.mu.Lock()
	defer windows.mu.Unlock()
	return windows.used
}

// IndexWindowBytes is, for tests, the bytes of window a reader's gzip index holds.
func IndexWindowBytes(r *Reader) int64 {
	g, ok := r.data.(*gzipReader)
	if !ok {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, p := range g.points {
		if p.window != nil {
			n += int64(len(p.flate.window))
		}
	}
	return n
}
