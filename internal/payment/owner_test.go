package payment

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReach(t *testing.T) {
	t.Parallel()
	require.True(t, Everyone().Covers("shop-b"), "operators and the relay reach every owner")
	require.True(t, Everyone().Covers(DefaultOwner))
	_, one := Everyone().Owner()
	require.False(t, one)

	shop := OwnerOnly("shop-b")
	require.True(t, shop.Covers("shop-b"))
	require.False(t, shop.Covers(DefaultOwner), "a checkout key reaches its owner only")
	o, one := shop.Owner()
	require.True(t, one)
	require.Equal(t, Owner("shop-b"), o)
}

func TestValidateOwner(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"default", "shop-b", "a", "shop.kr_2", "0shop"} {
		require.NoError(t, ValidateOwner(ok), ok)
	}
	for _, bad := range []string{"", "Shop", "-shop", ".shop", "shop b", "shop/b", "숍", string(make([]byte, OwnerMaxLen+1))} {
		require.Error(t, ValidateOwner(bad), bad)
	}
}

func TestSameIntentNeedsTheSameOwner(t *testing.T) {
	t.Parallel()
	p := Payment{Owner: DefaultOwner, OrderID: "order-1", OrderName: "x", Amount: 100, Currency: "KRW", Gateway: GatewayToss}
	in := Intent{OrderID: "order-1", OrderName: "x", Amount: 100, Currency: "KRW", Gateway: GatewayToss}
	require.True(t, in.Same(p), "no owner is the default owner")
	in.Owner = "shop-b"
	require.False(t, in.Same(p), "another owner's payment for the order is never a repeat")
}
