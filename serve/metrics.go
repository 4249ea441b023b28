package serve

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series, in a registry of its own.
type metrics struct {
	reg     *prometheus.Registry
	queue   prometheus.Gauge
	rows    prometheus.Histogram
	calls   prometheus.Counter
	images  prometheus.Counter
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{Name: "condiff_queue_images",
			Help: "Images accepted and not yet started."}),
		rows: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "condiff_denoiser_call_rows",
			Help:    "Rows per denoiser call (batch occupancy; a guided image takes two).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		calls: prometheus.NewCounter(prometheus.CounterOpts{Name: "condiff_denoiser_calls_total",
			Help: "Denoiser calls made."}),
		images: prometheus.NewCounter(prometheus.CounterOpts{Name: "condiff_images_total",
			Help: "Images finished."}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "condiff_request_seconds",
			Help:    "Request latency by endpoint and status.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)}, []string{"endpoint", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "condiff_errors_total",
			Help: "Errors by kind: bad_request, unauthorized, queue_full, timeout, cancelled, denoiser, internal."}, []string{"kind"}),
	}
	m.reg.MustRegister(m.queue, m.rows, m.calls, m.images, m.latency, m.errors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
