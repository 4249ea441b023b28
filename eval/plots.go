package eval

import (
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/condiff/condiff/checkpoint"
	"github.com/condiff/condiff/internal/fsutil"
)

var palette = []color.RGBA{{230, 25, 75, 255}, {60, 180, 75, 255}, {0, 130, 200, 255}, {245, 130, 48, 255}, {145, 30, 180, 255},
	{70, 240, 240, 255}, {240, 50, 230, 255}, {170, 110, 40, 255}, {128, 128, 0, 255}, {0, 0, 128, 255}}

func savePlot(p *plot.Plot, path string, w, h vg.Length) error {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return err
	}
	return fsutil.WriteAtomic(path, func(out io.Writer) error { _, err := wt.WriteTo(out); return err })
}

func plotTSNE(path string, y []float64, sampleLabels, realLabels []int, names []string, knn float64) error {
	sep := "5-NN separability " + pct(Num(knn))
	p := plot.New()
	p.Title.Text = "t-SNE of classifier features (samples solid, real faint); " + sep
	ns := len(sampleLabels)
	for c := range names {
		var pts, rpts plotter.XYs
		for i, l := range sampleLabels {
			if l == c {
				pts = append(pts, plotter.XY{X: y[2*i], Y: y[2*i+1]})
			}
		}
		for i, l := range realLabels {
			if l == c {
				rpts = append(rpts, plotter.XY{X: y[2*(ns+i)], Y: y[2*(ns+i)+1]})
			}
		}
		col := palette[c%len(palette)]
		if len(rpts) > 0 {
			s, err := plotter.NewScatter(rpts)
			if err != nil {
				return err
			}
			faint := color.NRGBA{R: col.R, G: col.G, B: col.B, A: 60}
			s.GlyphStyle.Color, s.GlyphStyle.Radius, s.GlyphStyle.Shape = faint, vg.Points(2), draw.CircleGlyph{}
			p.Add(s)
		}
		if len(pts) > 0 {
			s, err := plotter.NewScatter(pts)
			if err != nil {
				return err
			}
			s.GlyphStyle.Color, s.GlyphStyle.Radius, s.GlyphStyle.Shape = col, vg.Points(2.5), draw.CircleGlyph{}
			p.Add(s)
			p.Legend.Add(names[c], s)
		}
	}
	p.Legend.Top = true // ten or more entries run off the bottom of the canvas otherwise
	return savePlot(p, path, 7*vg.Inch, 6*vg.Inch)
}

func plotLoss(path string, log []checkpoint.LogEntry) error {
	p := plot.New()
	p.Title.Text = "training loss"
	p.X.Label.Text = "step"
	var pts, smooth plotter.XYs
	ema := log[0].Loss
	for _, e := range log {
		pts = append(pts, plotter.XY{X: float64(e.Step), Y: e.Loss})
		ema = 0.98*ema + 0.02*e.Loss
		smooth = append(smooth, plotter.XY{X: float64(e.Step), Y: ema})
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = color.RGBA{180, 180, 220, 255}
	s, err := plotter.NewLine(smooth)
	if err != nil {
		return err
	}
	s.Color, s.Width = color.RGBA{0, 0, 160, 255}, vg.Points(1.5)
	p.Add(l, s)
	p.Legend.Add("loss", l)
	p.Legend.Add("smoothed", s)
	return savePlot(p, path, 7*vg.Inch, 4*vg.Inch)
}
