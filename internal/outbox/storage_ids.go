package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// idRecords keeps a storage outbox's deduplication records in the storage
// too, so that an instance that restarts, or another sharing the storage,
// answers WeChat's retries of events accepted before as duplicates.
//
// Records are written after WeChat's answer, in batches: one file for
// every id accepted in the last writeEvery (FileStorage syncs each file to
// disk, a millisecond or more, which no answer waits for). A crash loses
// the batch not yet written: those retries are delivered again, at least
// once. A file is named "<latest expiry>-<random>" and holds a JSON object
// of keys and their expiry (Unix milliseconds), so that sweep removes it
// unread once every record in it has expired.
type idRecords struct {
	storage certmagic.Storage
	dir     string
	what    string // what the records are, for log lines
	log     *zap.Logger
	learn   func(map[string]time.Time) // takes the records read from the storage

	mu         sync.Mutex
	unwritten  map[string]time.Time
	writerDone chan struct{} // set while a writer runs; closed when it ends
	closing    bool          // flush was called: write at once
	wake       chan struct{} // cuts the writer's wait short
	known      map[string]bool
	stopSweep  context.CancelFunc // cuts a sweep under way short
	sweeping   sync.WaitGroup     // Add only from the polling loop, Wait after it stopped
}

const (
	// writeEvery is the most often id records are written.
	writeEvery = 2 * time.Second
	// sweepEvery is how often expired records are removed, and the files
	// of the others merged into one.
	sweepEvery = time.Hour
	// mergeAbove is how many record files a sweep leaves as they are.
	mergeAbove = 16
	// maxUnwritten bounds the records kept for another try when the
	// storage refuses them.
	maxUnwritten = 100_000
	// recordIO bounds one read, write or sweep of record files.
	recordIO = 10 * time.Second
)

// recordDir is where records of the outbox under prefix are kept, by the
// suffix of their kind ("_ids" for the event ids): apart from the outbox's
// own files, which scan reads every rescanEvery (some storages list by
// string prefix, so not beside them either).
func recordDir(prefix, suffix string) string {
	dir, base := path.Split(prefix)
	return path.Join(strings.TrimSuffix(dir, "/")+suffix, base)
}

func newIDRecords(storage certmagic.Storage, dir, what string, log *zap.Logger, learn func(map[string]time.Time)) *idRecords {
	return &idRecords{
		storage: storage, dir: dir, what: what, log: log, learn: learn,
		wake: make(chan struct{}, 1), known: make(map[string]bool),
	}
}

// add queues key's record for the storage; a writer starts when there is
// one and ends when all are written. After flush the record is written at
// once, by the caller.
func (ir *idRecords) add(key string, expiry time.Time) {
	ir.mu.Lock()
	if ir.closing {
		ir.mu.Unlock()
		ir.write(map[string]time.Time{key: expiry})
		return
	}
	if ir.unwritten == nil {
		ir.unwritten = make(map[string]time.Time)
	}
	ir.unwritten[key] = expiry
	if ir.writerDone == nil {
		ir.writerDone = make(chan struct{})
		go ir.writer(ir.writerDone)
	}
	ir.mu.Unlock()
}

// writer writes the queued records, a batch every writeEvery (at once
// after flush), until none are left.
func (ir *idRecords) writer(done chan struct{}) {
	defer close(done)
	for {
		ir.mu.Lock()
		closing := ir.closing
		ir.mu.Unlock()
		if !closing {
			t := time.NewTimer(writeEvery)
			select {
			case <-t.C:
			case <-ir.wake:
				t.Stop()
			}
		}
		ir.mu.Lock()
		batch := ir.unwritten
		ir.unwritten = nil
		if len(batch) == 0 {
			ir.writerDone = nil
			ir.mu.Unlock()
			return
		}
		ir.mu.Unlock()
		if ir.write(batch) {
			continue
		}
		// Kept for the next try, unless flushing (the process may be
		// about to end) or too many are waiting already. A record added
		// meanwhile is the newer one.
		ir.mu.Lock()
		if !ir.closing && len(ir.unwritten)+len(batch) <= maxUnwritten {
			maps.Copy(batch, ir.unwritten)
			ir.unwritten = batch
		}
		ir.mu.Unlock()
	}
}

// write stores one file of records and reports whether it did.
func (ir *idRecords) write(batch map[string]time.Time) bool {
	name, err := ir.store(batch)
	if err != nil {
		ir.log.Warn("outbox: cannot write records to the storage; a restart may not know them",
			zap.String("records", ir.what), zap.Int("count", len(batch)), zap.Error(err))
		return false
	}
	ir.mu.Lock()
	ir.known[name] = true
	ir.mu.Unlock()
	return true
}

// store writes batch as one record file and returns its name.
func (ir *idRecords) store(batch map[string]time.Time) (string, error) {
	out := make(map[string]int64, len(batch))
	var latest int64
	for k, exp := range batch {
		ms := exp.UnixMilli()
		out[k] = ms
		latest = max(latest, ms)
	}
	data, err := json.Marshal(out)
	if err != nil {
		return "", err
	}
	name := path.Join(ir.dir, strconv.FormatInt(latest, 10)+"-"+newToken())
	ctx, cancel := context.WithTimeout(context.Background(), recordIO)
	defer cancel()
	return name, ir.storage.Store(ctx, name, data)
}

// flush writes the queued records at once and waits for that, and ends a
// sweep under way; records added after it are written by their caller.
func (ir *idRecords) flush() {
	ir.mu.Lock()
	ir.closing = true
	done := ir.writerDone
	if ir.stopSweep != nil {
		ir.stopSweep()
	}
	ir.mu.Unlock()
	select {
	case ir.wake <- struct{}{}:
	default:
	}
	if done != nil {
		<-done
	}
	ir.sweeping.Wait()
}

// reopen undoes flush, for an outbox started again.
func (ir *idRecords) reopen() {
	ir.mu.Lock()
	ir.closing = false
	ir.mu.Unlock()
	select {
	case <-ir.wake: // a flush's, with no writer to take it
	default:
	}
}

// expiryOf is the latest expiry a record file's name gives, or false.
func expiryOf(name string) (time.Time, bool) {
	base, _, ok := strings.Cut(path.Base(name), "-")
	ms, err := strconv.ParseInt(base, 10, 64)
	if !ok || err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// read reads the record files not read or written here before and hands
// their unexpired records to learn: at open, those written before a
// restart; later, those another outbox on the storage wrote since (one
// that a reload replaced, or another instance).
//
// On an error, failedUntil is the latest expiry of the files that could
// not be read, after which nothing they hold matters; zero when that is
// not known (the listing failed).
func (ir *idRecords) read() (failedUntil time.Time, _ error) {
	ctx, cancel := context.WithTimeout(context.Background(), recordIO)
	defer cancel()
	names, err := ir.storage.List(ctx, ir.dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	var failed error
	for _, name := range names {
		ir.mu.Lock()
		known := ir.known[name]
		ir.mu.Unlock()
		latest, ok := expiryOf(name)
		if known || !ok || !latest.After(now) {
			continue
		}
		batch, err := ir.load(ctx, name)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // swept meanwhile
				failed = err // and read again next time
				failedUntil = later(failedUntil, latest)
			}
			continue
		}
		ir.learn(unexpired(batch, now))
		ir.mu.Lock()
		ir.known[name] = true
		ir.mu.Unlock()
	}
	return failedUntil, failed
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// load reads one record file. One that cannot be parsed reads as empty.
func (ir *idRecords) load(ctx context.Context, name string) (map[string]int64, error) {
	data, err := ir.storage.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	var batch map[string]int64
	if json.Unmarshal(data, &batch) != nil {
		ir.log.Warn("outbox: unreadable records skipped", zap.String("records", ir.what), zap.String("file", name))
	}
	return batch, nil
}

func unexpired(batch map[string]int64, now time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(batch))
	for k, ms := range batch {
		if exp := time.UnixMilli(ms); exp.After(now) {
			out[k] = exp
		}
	}
	return out
}

// startSweep sweeps in the background; only the polling loop calls it.
func (ir *idRecords) startSweep(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*recordIO)
	ir.mu.Lock()
	ir.stopSweep = cancel
	ir.mu.Unlock()
	ir.sweeping.Add(1)
	go func() {
		defer ir.sweeping.Done()
		defer cancel()
		ir.sweep(ctx, now)
	}()
}

// sweep removes the record files whose records have all expired, and
// merges the others into one file when there are more than mergeAbove,
// so that a restart reads few files.
func (ir *idRecords) sweep(ctx context.Context, now time.Time) {
	names, err := ir.storage.List(ctx, ir.dir, false)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			ir.log.Warn("outbox: cannot list records to remove expired ones", zap.String("records", ir.what), zap.Error(err))
		}
		return
	}
	var live []string
	for _, name := range names {
		latest, ok := expiryOf(name)
		switch {
		case !ok:
		case latest.After(now):
			live = append(live, name)
		case ir.storage.Delete(ctx, name) == nil:
			ir.forget(name)
		}
	}
	if len(live) <= mergeAbove {
		return
	}
	merged := make(map[string]time.Time)
	var read []string
	for _, name := range live {
		batch, err := ir.load(ctx, name)
		if err != nil {
			continue // kept as it is
		}
		for k, exp := range unexpired(batch, now) {
			merged[k] = exp
		}
		read = append(read, name)
	}
	if len(merged) > 0 && !ir.write(merged) {
		return
	}
	for _, name := range read {
		if ir.storage.Delete(ctx, name) == nil {
			ir.forget(name)
		}
	}
}

func (ir *idRecords) forget(name string) {
	ir.mu.Lock()
	delete(ir.known, name)
	ir.mu.Unlock()
}
