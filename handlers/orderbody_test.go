package handlers

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

// genericOrderBody decodes data as decode's generic path does: false when
// it would answer an error.
func genericOrderBody(data []byte) (orderBody, bool) {
	var b orderBody
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if dec.Decode(&b) != nil {
		return b, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return b, false
	}
	return b, true
}

func sameField(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// FuzzOrderBodyParse: whatever the fast path accepts, the generic decoder
// accepts too, with the same values. Its seeds run with the tests.
func FuzzOrderBodyParse(f *testing.F) {
	for _, s := range []string{
		orderBodyStr, ` { "number" : 3 ,"goods_id":7,	"user_id":-12 } ` + "\r\n", `{}`, `{"user_id":0}`, `{"user_id":-0}`,
		`{"user_id":999999999999999999,"goods_id":7,"number":1}`, `{"user_id":9223372036854775807,"goods_id":7,"number":1}`,
		`{"user_id":01,"goods_id":7,"number":1}`, `{"user_id":1,"user_id":2}`, `{"USER_ID":1}`, `{"user_id":null}`,
		`{"user_id":1.0}`, `{"user_id":1e2}`, `{"user\u005fid":1}`, `{"user_id":1,}`, `{"user_id":1}x`, `{"user_id":1} {}`,
		`{"user_id":-}`, `{"user_id":1`, `[1]`, ``, `{"user_id":"1"}`, `{"coupon":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast orderBody
		if !fast.parse(data) {
			return
		}
		slow, ok := genericOrderBody(data)
		if !ok || !sameField(fast.UserID, slow.UserID) || !sameField(fast.GoodsID, slow.GoodsID) || !sameField(fast.Number, slow.Number) {
			t.Fatalf("%q: the fast path read %+v, the generic decoder %+v (accepted %v)", data, fast, slow, ok)
		}
	})
}

// The bodies clients send take the fast path.
func TestOrderBodyFastPathTakesTheUsualForms(t *testing.T) {
	for _, s := range []string{orderBodyStr, `{"number":1,"goods_id":7,"user_id":1}`, " {\n \"user_id\": 1,\n \"goods_id\": 7,\n \"number\": 1\n}\n", `{"goods_id":7}`} {
		var b orderBody
		if !b.parse([]byte(s)) {
			t.Errorf("%q: not taken by the fast path", s)
		}
	}
}

// A sentinel's ready answer is byte for byte the one c.JSON would give.
func TestSentinelAnswersAreThoseOfTheGenericPath(t *testing.T) {
	a := &api{opts: testOptions()}
	for _, e := range statusOf {
		if e.status >= 500 {
			continue
		}
		ready, generic := httptest.NewRecorder(), httptest.NewRecorder()
		c, _ := gin.CreateTestContext(ready)
		a.writeError(c, e.err)
		g, _ := gin.CreateTestContext(generic)
		writeErrorCode(g, e.status, e.code, e.err.Error())
		if ready.Code != generic.Code || ready.Body.String() != generic.Body.String() ||
			ready.Header().Get("Content-Type") != generic.Header().Get("Content-Type") {
			t.Errorf("%s: ready %d %q %q, generic %d %q %q", e.code, ready.Code, ready.Header().Get("Content-Type"), ready.Body,
				generic.Code, generic.Header().Get("Content-Type"), generic.Body)
		}
	}
}
