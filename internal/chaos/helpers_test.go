package chaos

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDatabaseURLs(t *testing.T) {
	hosts, err := urlHosts("postgres://u:p@db1,db2:5433/app?sslmode=require")
	require.NoError(t, err)
	require.Equal(t, []string{"db1:5432", "db2:5433"}, hosts)
	_, err = urlHosts("host=db1 dbname=app")
	require.Error(t, err, "the proxies need a URL")

	got, err := withHosts("postgres://postgres@127.0.0.1:5432/app?sslmode=disable", []string{"127.0.0.1:1", "127.0.0.1:2"})
	require.NoError(t, err)
	require.Equal(t, "postgres://postgres@127.0.0.1:1,127.0.0.1:2/app?sslmode=disable&target_session_attrs=read-write", got)
	got, err = withHosts("postgres://postgres@db/app", []string{"127.0.0.1:1"})
	require.NoError(t, err)
	require.Equal(t, "postgres://postgres@127.0.0.1:1/app?sslmode=disable", got, "one host needs no session attrs; TLS would hide the wire protocol from the proxy")
}
