package wechatauth

import (
	"slices"
	"testing"
)

// A handler with lines of its own uses none of the wechat app's settings;
// those it does not set itself are named, to be warned of. A handler
// without lines, or whose only lines name the app's apps, uses the app's
// and is warned of nothing.
func TestForHandlerNamesTheAppSettingsItLeavesUnused(t *testing.T) {
	app := &WeChatApp{Apps: []App{{AppID: "wx0000000000000001", AppSecret: "s"}}, Sandbox: true,
		Store: "redis://127.0.0.1:6379/0", SigningKey: "app-signing-key-0123456789abcdef0123"}
	for _, tc := range []struct {
		name      string
		own       sharedConfig
		wantStore string
		unused    []string
		also      []string // web apps the handler names
	}{
		{"no lines: the app's", sharedConfig{}, app.Store, nil, nil},
		{"a reference to the app's app", sharedConfig{apps: []App{{AppID: "wx0000000000000001"}}}, app.Store, nil, nil},
		{"sandbox of its own", sharedConfig{Sandbox: true}, "", []string{"app", "store", "signing_key"}, nil},
		{"its own app and store", sharedConfig{apps: []App{{AppID: "wx0000000000000002", AppSecret: "t"}}, Store: "memory"},
			"memory", []string{"sandbox", "signing_key"}, nil},
		// app_id without its secret beside a line of its own: the app's
		// app of that id is not read, and the load fails on the secret.
		{"a reference beside a line of its own", sharedConfig{apps: []App{{AppID: "wx0000000000000001"}}, Timeout: 1},
			"", []string{"app", "sandbox", "store", "signing_key"}, nil},
		// A web app only the app holds, named by a handler with its own
		// apps, is not read either.
		{"a web app only the app holds", sharedConfig{apps: []App{{AppID: "wx0000000000000002", AppSecret: "t"}}, Sandbox: true, Store: "memory",
			SigningKey: "own-signing-key-0123456789abcdef0123"}, "memory", []string{"app"}, []string{"wx0000000000000001"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, unused := app.forHandler(tc.own, tc.also...)
			if sc.Store != tc.wantStore || !slices.Equal(unused, tc.unused) {
				t.Errorf("store %q, unused %q; want store %q, unused %q", sc.Store, unused, tc.wantStore, tc.unused)
			}
		})
	}
	if _, unused := (&WeChatApp{}).forHandler(sharedConfig{Sandbox: true}); unused != nil {
		t.Errorf("no wechat app settings: unused %q, want none", unused)
	}
}
