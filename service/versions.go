package service

import (
	"context"
	"fmt"
	"time"
)

// placeFunc runs one version's order path for an order already validated
// and given its id.
type placeFunc func(s *Service, ctx context.Context, o Order) error

// versions is the one list of order paths, oldest first. Handlers, the wrk
// runner and the shared test suite all read it: a new version is a file with
// its place function and a line here.
var versions = []struct {
	name  string
	place placeFunc
}{
	{"V1", (*Service).placeV1},
	{"V2", (*Service).placeV2},
	{"V3", (*Service).placeV3},
	{"V4", (*Service).placeV4},
	{"V5", (*Service).placeV5},
	{"V6", (*Service).placeV6},
}

// Versions lists the order versions, oldest first.
func Versions() []string {
	names := make([]string, len(versions))
	for i, v := range versions {
		names[i] = v.name
	}
	return names
}

// VersionNames lists the order versions' names, oldest first.
func VersionNames() []string { return Versions() }

// BestVersion is the version POST /order uses.
func BestVersion() string { return versions[len(versions)-1].name }

// PlaceOrder validates req and sells it through the named version.
func (s *Service) PlaceOrder(ctx context.Context, version string, req OrderRequest) (Order, error) {
	if err := s.validate(req); err != nil {
		return Order{}, err
	}
	for _, v := range versions {
		if v.name == version {
			o := Order{ID: s.ids.NewID(), UserID: req.UserID, GoodsID: req.GoodsID, Number: req.Number, Version: version,
				PayDeadline: time.Now().Add(s.opts.PayTimeout).UTC().Truncate(time.Millisecond)}
			if err := v.place(s, ctx, o); err != nil {
				return Order{}, err
			}
			return o, nil
		}
	}
	return Order{}, fmt.Errorf("%w: order version %q", ErrNotFound, version)
}

func (s *Service) validate(req OrderRequest) error {
	switch {
	case req.UserID < 1:
		return invalid("user_id must be a positive integer")
	case req.GoodsID < 1:
		return invalid("goods_id must be a positive integer")
	case req.Number < 1 || req.Number > s.opts.MaxNumber:
		return invalid("number must be between 1 and %d", s.opts.MaxNumber)
	}
	return nil
}
