package serve

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/condiff/condiff/diffusion"
	"github.com/condiff/condiff/infer"
)

func ptr[T any](v T) *T { return &v }

// submit makes a plan the scheduler's job and hands it over; the
// scheduler admits it or refuses it (queue full).
func (s *Server) submit(ctx context.Context, p *plan) (*job, error) {
	j := &job{ctx: ctx, sampler: p.sampler, guide: diffusion.Guidance{Weight: p.guidance, Null: s.info.Null(), Interval: p.interval, Auto: p.auto}, seed: p.seed,
		indices: p.indices, labels: p.labels, notify: make(chan struct{}, 1),
		chain: diffusion.Chain{Schedule: s.sch, Timesteps: p.ts, Eta: p.eta, Values: s.sched.values}}
	return j, s.sched.enqueue(j)
}

// collect waits for all of a job's images and returns them as PNGs in the
// plan's order; false: the job failed, and the request was answered.
func (s *Server) collect(w http.ResponseWriter, j *job, p *plan) ([]Image, bool) {
	images := make([]Image, len(p.indices))
	err := j.wait(func(f finished) error {
		im, err := s.image(p, f)
		images[f.pos] = im
		return err
	}, nil)
	if err != nil {
		s.failed(w, j.ctx, err)
		return nil, false
	}
	s.answering(w)
	return images, true
}

// encodeError fails a request whose image could not be encoded: no
// answer carries an empty image in its place.
type encodeError struct{ err error }

func (e *encodeError) Error() string { return e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }

// image turns a finished image into the answer's PNG.
func (s *Server) image(p *plan, f finished) (Image, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, infer.ToImage(f.x, s.info.Channels, s.info.ImageSize)); err != nil {
		return Image{}, &encodeError{fmt.Errorf("image %d: png: %w", p.indices[f.pos], err)}
	}
	gi, c := p.indices[f.pos], p.labels[f.pos]
	return Image{Index: gi, Class: c, ClassName: s.info.ClassName(c), Seed: p.seed, File: infer.FileName(s.info, gi, c), PNG: b.Bytes()}, nil
}

// accept decodes a request body into a T, plans it and submits it to the
// scheduler; false: the request was answered already (400, 413, 429).
// cancel ends the job's time.
func accept[T any](s *Server, w http.ResponseWriter, r *http.Request, planOf func(*T) (*plan, error)) (j *job, p *plan, cancel context.CancelFunc, ok bool) {
	var req T
	if err := decode(r.Body, &req); err != nil {
		s.refuse(w, err)
		return nil, nil, nil, false
	}
	p, err := planOf(&req)
	if err != nil {
		s.refuse(w, err)
		return nil, nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.RequestTimeout)
	if j, err = s.submit(ctx, p); err != nil {
		cancel()
		s.refuse(w, err)
		return nil, nil, nil, false
	}
	return j, p, cancel, true
}

func (s *Server) samples(w http.ResponseWriter, r *http.Request) int {
	j, p, cancel, ok := accept(s, w, r, s.samplesPlan)
	if !ok {
		return 0
	}
	defer cancel()
	resp := SamplesResponse{Model: s.id, Sampler: p.sampler.Name(), Steps: len(p.ts), Eta: p.eta, Guidance: p.guidance, Seed: p.seed}
	if !p.interval.Everywhere() {
		resp.GuidanceInterval = p.interval.String()
	}
	if p.auto {
		resp.Guide = s.guideID
	}
	acceptHdr := r.Header.Get("Accept")
	if strings.Contains(acceptHdr, "text/event-stream") {
		return s.stream(w, j, p, resp)
	}
	images, ok := s.collect(w, j, p)
	if !ok {
		return 0
	}
	sort.Slice(images, func(a, b int) bool { return images[a].Index < images[b].Index })
	resp.Images = images
	if r.URL.Query().Get("format") == "zip" || strings.Contains(acceptHdr, "application/zip") {
		return s.zip(w, resp)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
	return len(images)
}

// zip answers a zip of the PNGs and the manifest sample writes, so that an
// unpacked answer is a sample directory eval reads.
func (s *Server) zip(w http.ResponseWriter, resp SamplesResponse) int {
	m := infer.Manifest{Model: filepath.Base(s.o.Model), ModelHash: s.hash, Sampler: resp.Sampler, Steps: resp.Steps, Eta: resp.Eta,
		Guidance: resp.Guidance, GuidanceInterval: resp.GuidanceInterval, Seed: resp.Seed, Device: s.session.Device, Backend: s.session.Backend, Complete: true, Images: []infer.ManifestEntry{}}
	if resp.Guide != "" {
		m.Guide, m.GuideHash = filepath.Base(s.o.Guide), s.guideHash
	}
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for _, im := range resp.Images {
		m.Images = append(m.Images, infer.ManifestEntry{Index: im.Index, Class: im.Class, ClassName: im.ClassName, Seed: im.Seed, File: im.File})
		f, err := z.CreateHeader(&zip.FileHeader{Name: im.File, Method: zip.Store})
		if err == nil {
			_, err = f.Write(im.PNG)
		}
		if err != nil {
			s.refuse(w, err)
			return 0
		}
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if f, err := z.Create("manifest.json"); err == nil {
		f.Write(append(mb, '\n'))
	}
	if err := z.Close(); err != nil {
		s.refuse(w, err)
		return 0
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="samples.zip"`)
	w.Write(b.Bytes())
	return len(resp.Images)
}

// stream answers server-sent events: progress as steps are made, each
// image as it finishes, then done (or error).
func (s *Server) stream(w http.ResponseWriter, j *job, p *plan, resp SamplesResponse) int {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(event string, v any) {
		s.answering(w)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, compact(v))
		if fl != nil {
			fl.Flush()
		}
	}
	send("start", resp)
	count, last := 0, -1
	err := j.wait(func(f finished) error {
		im, err := s.image(p, f)
		if err != nil {
			return err
		}
		count++
		send("image", im)
		return nil
	}, func(done, total int) {
		if done != last {
			last = done
			send("progress", map[string]int{"steps_done": done, "steps_total": total, "images_done": count, "images_total": len(p.indices)})
		}
	})
	if err != nil {
		s.failed(headless{w}, j.ctx, err)
		send("error", map[string]string{"message": err.Error()})
		return count
	}
	send("done", map[string]int{"images": count})
	return count
}

// answering gives the client WriteTimeout from now to take what is
// written next: a client that stops reading releases its handler then.
func (s *Server) answering(w http.ResponseWriter) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
}

// headless swallows what failed writes once a stream has begun (its status
// is sent already); only the metrics count.
type headless struct{ http.ResponseWriter }

func (headless) WriteHeader(int)             {}
func (headless) Write(b []byte) (int, error) { return len(b), nil }
