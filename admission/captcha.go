package admission

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"time"

	"github.com/dchest/captcha"
)

// CaptchaStore keeps each captcha's digits where every instance finds them.
type CaptchaStore interface {
	PutCaptcha(ctx context.Context, id string, digits []byte, ttl time.Duration) error
	// CaptchaDigits reads a captcha's digits; take also deletes them, so
	// that a solution is good once.
	CaptchaDigits(ctx context.Context, id string, take bool) ([]byte, bool, error)
}

// Captchas are image captchas (dchest/captcha draws them) whose digits live
// in the store, so that a captcha fetched from one instance may be solved on
// another. A solved captcha lets its client past its address's limit once.
type Captchas struct {
	store CaptchaStore
	ttl   time.Duration
}

// CaptchaLength is how many digits a captcha shows.
const CaptchaLength = 6

// Captcha image size, in pixels.
const (
	CaptchaWidth  = 240
	CaptchaHeight = 80
)

// NewCaptchas makes captchas that live ttl.
func NewCaptchas(store CaptchaStore, ttl time.Duration) *Captchas {
	return &Captchas{store: store, ttl: ttl}
}

// New makes a captcha and returns its id.
func (c *Captchas) New(ctx context.Context) (string, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	return id, c.store.PutCaptcha(ctx, id, captcha.RandomDigits(CaptchaLength), c.ttl)
}

// WriteImage writes captcha id's PNG; false when there is no such captcha.
func (c *Captchas) WriteImage(ctx context.Context, id string, w io.Writer) (bool, error) {
	digits, ok, err := c.store.CaptchaDigits(ctx, id, false)
	if err != nil || !ok {
		return ok, err
	}
	_, err = captcha.NewImage(id, digits, CaptchaWidth, CaptchaHeight).WriteTo(w)
	return true, err
}

// Solve checks solution (the digits as text) against captcha id and uses
// the captcha up, right or wrong: one guess per captcha.
func (c *Captchas) Solve(ctx context.Context, id, solution string) (bool, error) {
	if id == "" || len(solution) != CaptchaLength {
		return false, nil
	}
	digits, ok, err := c.store.CaptchaDigits(ctx, id, true)
	if err != nil || !ok {
		return false, err
	}
	for i, d := range digits {
		if solution[i] != '0'+d {
			return false, nil
		}
	}
	return true, nil
}
