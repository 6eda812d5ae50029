package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"
)

// operation is one unit of work: a request, or for authcode a whole
// sign-in. It returns an error for anything but the expected answer.
type operation func(ctx context.Context) error

// workerStats is what one worker measured; merged at the end, so workers
// never contend on shared state.
type workerStats struct {
	latencies []time.Duration // of successes
	errors    int
	messages  map[string]int // error message → count, bounded
}

const maxDistinctErrors = 20

func (w *workerStats) addError(err error) {
	w.errors++
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if _, ok := w.messages[msg]; !ok && len(w.messages) >= maxDistinctErrors {
		msg = "(other errors)"
	}
	w.messages[msg]++
}

// result is a finished run.
type result struct {
	window    time.Duration   // measured wall time
	latencies []time.Duration // sorted
	errors    int
	messages  map[string]int
}

// load runs op in a closed loop on c workers: for warmup, discarding what
// happens, then for d, recording every operation that completes inside
// the window. Operations still in flight when the window closes are left
// to finish (cancelling them would make the server log errors) but are
// not counted.
func load(ctx context.Context, c int, warmup, d time.Duration, op operation) result {
	start := time.Now()
	measureStart := start.Add(warmup)
	measureEnd := measureStart.Add(d)
	stats := make([]workerStats, c)
	var wg sync.WaitGroup
	for i := range stats {
		w := &stats[i]
		w.messages = map[string]int{}
		w.latencies = make([]time.Duration, 0, 1024)
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(measureEnd) {
					return
				}
				err := op(ctx)
				t1 := time.Now()
				if t1.Before(measureStart) || !t1.Before(measureEnd) || ctx.Err() != nil {
					continue
				}
				if err != nil {
					w.addError(err)
					continue
				}
				w.latencies = append(w.latencies, t1.Sub(t0))
			}
		})
	}
	wg.Wait()

	end := time.Now()
	if end.After(measureEnd) {
		end = measureEnd
	}
	res := result{window: max(end.Sub(measureStart), 0), messages: map[string]int{}}
	n := 0
	for i := range stats {
		n += len(stats[i].latencies)
	}
	res.latencies = make([]time.Duration, 0, n)
	for i := range stats {
		res.latencies = append(res.latencies, stats[i].latencies...)
		res.errors += stats[i].errors
		for m, k := range stats[i].messages {
			res.messages[m] += k
		}
	}
	slices.Sort(res.latencies)
	return res
}

// percentile is the nearest-rank percentile (0 < p <= 100) of sorted: the
// smallest value such that at least p% of the values are at or below it.
// It is 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// report is the printed result; its JSON form is what -json prints.
type report struct {
	Scenario    string  `json:"scenario"`
	Unit        string  `json:"unit"`
	Concurrency int     `json:"concurrency"`
	WindowS     float64 `json:"window_s"`
	WarmupS     float64 `json:"warmup_s"`
	OK          int     `json:"ok"`
	Errors      int     `json:"errors"`
	RPS         float64 `json:"rps"`
	MeanMS      float64 `json:"mean_ms"`
	P50MS       float64 `json:"p50_ms"`
	P90MS       float64 `json:"p90_ms"`
	P99MS       float64 `json:"p99_ms"`
	MaxMS       float64 `json:"max_ms"`
	// ErrorSamples are the most frequent error messages with their counts.
	ErrorSamples []errorSample `json:"error_samples,omitempty"`
}

type errorSample struct {
	Message string `json:"message"`
	Count   int    `json:"count"`
}

const maxErrorSamples = 5

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func newReport(cfg *config, res result) report {
	unit := "request"
	if cfg.scenario == "authcode" || cfg.scenario == "authcode-totp" {
		unit = "sign-in"
	}
	r := report{
		Scenario: cfg.scenario, Unit: unit, Concurrency: cfg.concurrency,
		WindowS: res.window.Seconds(), WarmupS: cfg.warmup.Seconds(),
		OK: len(res.latencies), Errors: res.errors,
		MeanMS: ms(mean(res.latencies)),
		P50MS:  ms(percentile(res.latencies, 50)),
		P90MS:  ms(percentile(res.latencies, 90)),
		P99MS:  ms(percentile(res.latencies, 99)),
		MaxMS:  ms(percentile(res.latencies, 100)),
	}
	if res.window > 0 {
		r.RPS = math.Round(float64(len(res.latencies))/res.window.Seconds()*10) / 10
	}
	for m, k := range res.messages {
		r.ErrorSamples = append(r.ErrorSamples, errorSample{Message: m, Count: k})
	}
	slices.SortFunc(r.ErrorSamples, func(a, b errorSample) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Message, b.Message))
	})
	if len(r.ErrorSamples) > maxErrorSamples {
		r.ErrorSamples = r.ErrorSamples[:maxErrorSamples]
	}
	return r
}

func (r report) writeText(w io.Writer) error {
	_, err := fmt.Fprintf(w, `scenario     %s (c=%d, %.1fs measured after %.1fs warm-up)
throughput   %.1f %ss/s (%d ok, %d errors)
latency      p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms  mean %.2fms
`, r.Scenario, r.Concurrency, r.WindowS, r.WarmupS, r.RPS, r.Unit, r.OK, r.Errors,
		r.P50MS, r.P90MS, r.P99MS, r.MaxMS, r.MeanMS)
	if err != nil {
		return err
	}
	for _, s := range r.ErrorSamples {
		if _, err := fmt.Fprintf(w, "error ×%d    %s\n", s.Count, s.Message); err != nil {
			return err
		}
	}
	return nil
}
