package source

// NewPlainDemo returns a demo source that draws terrain only, without the
// zoom-dependent graticule and checker, so that tests can compare zooms.
func NewPlainDemo(cfg DemoConfig) (*Demo, error) {
	d, err := NewDemo(cfg)
	if err != nil {
		return nil, err
	}
	d.plain = true
	return d, nil
}
