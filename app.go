package wechatauth

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(new(WeChatApp))
}

// WeChatApp is the `wechat` app: what the module's handlers share across a
// config (App is one mini program's credentials). Every wechat_auth
// handler loads it (ctx.App("wechat")), so it is there even when the
// config does not name it; Caddy then starts it as it starts the tls app
// the http app loads.
//
// Today it holds no configuration of its own. On each config load it
// checks that no wechat_auth is placed where it can never run: after a
// handler that always answers (reverse_proxy, respond, file_server, …)
// in the same route list. Such a config would pass every request, forged
// X-WX-OPENID headers included, to the upstream without authentication,
// so it is refused with the place and the handler that shadows it.
type WeChatApp struct {
	ctx caddy.Context

	// checked is set once the routes were walked for this config.
	checked bool
}

// CaddyModule returns the Caddy module information.
func (*WeChatApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "wechat",
		New: func() caddy.Module { return new(WeChatApp) },
	}
}

// Provision checks the http app's routes for a wechat_auth that can never
// run. The app is provisioned before any app starts, by `caddy validate`
// too (which never starts apps), so the check refuses such a config in
// `caddy validate`, `caddy run`, `caddy reload` and a load through the
// admin API alike.
//
// The http app is usually half provisioned here (its first wechat_auth is
// what loads this app); its routes are then read in both forms, the
// provisioned handlers and the raw JSON of those still to come. When this
// app is named in the config and provisioned first, asking for the http
// app provisions it whole.
func (a *WeChatApp) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	httpApp, err := ctx.AppIfConfigured("http")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil
	}
	if err != nil {
		return err
	}
	a.checked = true
	if problems := unreachableAuth(httpApp.(*caddyhttp.App)); len(problems) > 0 {
		return fmt.Errorf("%s", joinProblems(problems))
	}
	return nil
}

// Start implements caddy.App. The routes were checked in Provision.
func (a *WeChatApp) Start() error { return nil }

// Stop implements caddy.App.
func (a *WeChatApp) Stop() error { return nil }

// loadApp loads the `wechat` app for a handler's Provision; it runs the
// app's checks on the config the handler belongs to.
func loadApp(ctx caddy.Context) (*WeChatApp, error) {
	v, err := ctx.App("wechat")
	if err != nil {
		return nil, err
	}
	return v.(*WeChatApp), nil
}

// Interface guards
var (
	_ caddy.App         = (*WeChatApp)(nil)
	_ caddy.Provisioner = (*WeChatApp)(nil)
)
