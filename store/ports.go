package store

import (
	"github.com/go-seckill/seckill/service/catalog"
	"github.com/go-seckill/seckill/service/coupon"
	"github.com/go-seckill/seckill/service/deadletter"
	"github.com/go-seckill/seckill/service/ledger"
	"github.com/go-seckill/seckill/service/ordering"
	"github.com/go-seckill/seckill/service/payment"
	"github.com/go-seckill/seckill/service/recovery"
)

// The ports of the service's units this package implements.
var (
	_ catalog.Goods            = (*Database)(nil)
	_ ledger.Sales             = (*Database)(nil)
	_ ledger.Records           = (*Database)(nil)
	_ ledger.Truths            = (*Database)(nil)
	_ ledger.Orders            = (*Database)(nil)
	_ ordering.Orders          = (*Database)(nil)
	_ ordering.Prices          = (*Database)(nil)
	_ catalog.Windows          = (*Redis)(nil)
	_ deadletter.Letters       = (*Database)(nil)
	_ deadletter.Publisher     = (*Publisher)(nil)
	_ payment.Orders           = (*Database)(nil)
	_ recovery.OutboxOrders    = (*Database)(nil)
	_ recovery.GoodsLister     = (*Database)(nil)
	_ ledger.Gate              = (*Redis)(nil)
	_ ledger.Accepts           = (*Redis)(nil)
	_ ordering.AcceptPublisher = (*Publisher)(nil)
	_ ledger.Moves             = (*Redis)(nil)
	_ ledger.Mends             = (*Redis)(nil)
	_ ledger.Locker            = (*Redis)(nil)
	_ catalog.Stocks           = (*Redis)(nil)
	_ ordering.Outcomes        = (*Outcomes)(nil)
	_ ordering.Publisher       = (*Publisher)(nil)
	_ ledger.Announcer         = (*Publisher)(nil)
	_ payment.TimeoutPublisher = (*Publisher)(nil)
	_ recovery.Publisher       = (*Publisher)(nil)
	_ ordering.IDs             = (*IDs)(nil)
	_ recovery.IDAt            = (*IDs)(nil)
	_ coupon.Templates         = (*Database)(nil)
	_ coupon.Records           = (*Database)(nil)
	_ coupon.SubStocks         = CouponStocks{}
	_ coupon.TemplateCache     = (*Redis)(nil)
	_ coupon.Locker            = (*Redis)(nil)
	_ coupon.IDs               = (*IDs)(nil)
)
