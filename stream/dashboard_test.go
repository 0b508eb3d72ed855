package stream_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// The dashboard in a real browser (Debian's chromium, headless, driven
// with chromedp): node a of a three-node cluster shows the cluster, a
// slow SYNC's progress advancing, its outcome, a located object, and a
// killed node turning dead. Screenshots go to docs/screenshots/ with
// PLASMA_SCREENSHOTS=1 (for the README), else to a temporary directory.
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromium(t)
	nodes, http := startCluster(t, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	shots := t.TempDir()
	if os.Getenv("PLASMA_SCREENSHOTS") != "" {
		shots = filepath.Join("..", "docs", "screenshots")
	}

	// A 24 MiB object on c, and a link from c throttled to 3 MiB/s.
	id := store.ObjectID{0xda, 0x5b}
	if err := testutil.StoreClient(t, c.Socket).PutID(bg, id, testutil.Pattern(24<<20, 3), []byte("dashboard")); err != nil {
		t.Fatal(err)
	}
	ca := streamClient(t, a.Addr)
	waitHolders(t, ca, id, "[c]")
	slow := testutil.StartProxy(t, c.Addr, func(p *testutil.Proxy) { p.Rate = 3 << 20 })

	ctx, cancel := browser(t, chrome)
	defer cancel()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		actx, acancel := context.WithTimeout(ctx, 60*time.Second)
		defer acancel()
		if err := chromedp.Do(actx, actions...); err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	dash := fmt.Sprintf("http://127.0.0.1:%d/", http[0])
	run("load the dashboard and see the three nodes alive", chromedp.Navigate(dash),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="a"] .badge.alive`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-node="b"] .badge.alive`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="c"] .badge.alive`)))

	synced := make(chan error, 1)
	go func() {
		_, err := ca.Sync(bg, []stream.PeerRequest{{Kind: stream.Copy, From: slow.Addr, Objects: []stream.ObjectID{id}}})
		synced <- err
	}()
	// The transfer's row appears and its bar grows between polls, with a
	// rate beside it.
	first := transferBar(t, ctx, 0)
	transferBar(t, ctx, first)
	run("see the progress bar", chromedp.WaitVisible(chromedp.CSS(`tr[data-transfer] .bar > span`)))
	screenshot(t, ctx, shots, "dashboard-transfer.png")
	if err := <-synced; err != nil {
		t.Fatalf("the slow SYNC failed: %v", err)
	}
	run("see the transfer finished ok", chromedp.WaitVisible(chromedp.CSS(`#no-active`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-recent] .badge.ok`)))
	// Its outcome per object, under "objects".
	run("open the finished transfer's objects", chromedp.Click(chromedp.CSS(`tr[data-recent] details summary`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-recent] details tbody .badge.ok`)))
	pollTrue(t, ctx, "the object's outcome", fmt.Sprintf(
		`[...document.querySelectorAll("tr[data-recent] details tbody tr")].some((r) => r.cells[0].textContent === %q && r.cells[1].textContent === "ok")`, id.String()))

	run("locate the object", chromedp.SendKeys(chromedp.CSS(`#locate-id`), id.String()), chromedp.Click(chromedp.CSS(`#locate button`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-holder="a"]`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-holder="c"]`)))

	if err := b.Stream.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	run("see the killed node dead", chromedp.WaitVisible(chromedp.CSS(`tr[data-node="b"] .badge.dead`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="c"] .badge.alive`)))
	screenshot(t, ctx, shots, "dashboard.png")
}

// transferBar waits until the dashboard shows a transfer in progress
// whose bar is filled beyond after percent (and not full) with a rate
// above zero, and returns how far it is filled.
func transferBar(t *testing.T, ctx context.Context, after float64) float64 {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	got, err := chromedp.Run(actx, chromedp.Poll[float64](fmt.Sprintf(`(() => {
		const r = document.querySelector("tr[data-transfer]");
		if (!r) return null;
		const w = parseFloat(r.querySelector(".bar > span").style.width);
		const rate = r.cells[4].textContent;
		return w > %g && w < 100 && Number(r.dataset.bytes) > 0 && !rate.startsWith("0 ") ? w : null;
	})()`, after), chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		t.Fatalf("browser: no transfer in progress with its bar beyond %g%%: %v", after, err)
	}
	return got
}

// pollTrue waits until the JavaScript expression is true.
func pollTrue(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(actx, chromedp.Poll[bool](`(() => (`+expr+`) || null)()`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("browser: never saw %s: %v", what, err)
	}
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(actx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", filepath.Join(dir, name), len(png))
}

// chromium is the browser's path; the test fails (never skips) without.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: the dashboard is tested in a real browser; install Debian's chromium (apt-get install -y chromium)")
	return ""
}

// browser starts a headless chromium with a fresh profile.
func browser(t *testing.T, path string) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1100),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		acancel()
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	return ctx, func() { cancel(); acancel() }
}
