package handlers

// parse is the order body's fast path, for the form every client sends: one
// flat object of user_id, goods_id and number, each at most once and in
// any order, with integer values and JSON whitespace. It reports false on
// anything else (another or differently cased key, null, a fraction or an
// exponent, an escape, a value past 64 bits, trailing data), which the
// generic decoder then reads and answers: what parse accepts, the generic
// decoder reads to the same values, at a fraction of its cost.
func (b *orderBody) parse(data []byte) bool {
	var vals *[3]int64 // the values, in one allocation rather than three
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			// "key"
			if i >= len(data) || data[i] != '"' {
				return false
			}
			end := i + 1
			for end < len(data) && data[end] != '"' && data[end] != '\\' {
				end++
			}
			if end >= len(data) || data[end] != '"' {
				return false
			}
			var field **int64
			k := 0
			switch string(data[i+1 : end]) {
			case "user_id":
				field = &b.UserID
			case "goods_id":
				field, k = &b.GoodsID, 1
			case "number":
				field, k = &b.Number, 2
			default:
				return false
			}
			if *field != nil {
				return false // a repeated key: the generic decoder's rules apply
			}
			i = skipSpace(data, end+1)
			if i >= len(data) || data[i] != ':' {
				return false
			}
			i = skipSpace(data, i+1)
			v, next, ok := parseInt64(data, i)
			if !ok {
				return false
			}
			if vals == nil {
				vals = new([3]int64)
			}
			vals[k] = v
			*field = &vals[k]
			i = skipSpace(data, next)
			if i >= len(data) {
				return false
			}
			if data[i] == '}' {
				i++
				break
			}
			if data[i] != ',' {
				return false
			}
			i = skipSpace(data, i+1)
		}
	}
	return skipSpace(data, i) == len(data)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// parseInt64 reads a JSON integer at data[i:] (an optional minus, then 0 or
// digits without a leading zero) that is not followed by a fraction or an
// exponent and fits in an int64; it returns the value and the index after
// it.
func parseInt64(data []byte, i int) (int64, int, bool) {
	neg := false
	if i < len(data) && data[i] == '-' {
		neg = true
		i++
	}
	start := i
	var u uint64
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		if i-start >= 18 { // 19 digits and more may overflow: leave them to the generic decoder
			return 0, 0, false
		}
		u = u*10 + uint64(data[i]-'0')
		i++
	}
	switch {
	case i == start, data[start] == '0' && i-start > 1:
		return 0, 0, false
	case i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E'):
		return 0, 0, false
	}
	if neg {
		return -int64(u), i, true
	}
	return int64(u), i, true
}
