//go:build unix

package ipc_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

// exampleBackend answers every token request with a fixed credential.
type exampleBackend struct{}

func (exampleBackend) Status(context.Context) (ipc.StatusResponse, error) {
	return ipc.StatusResponse{Version: "example"}, nil
}

func (exampleBackend) Token(_ context.Context, _ ipc.Peer, r ipc.TokenRequest) (ipc.TokenResponse, error) {
	if r.Account != "work" {
		return ipc.TokenResponse{}, &ipc.Error{Code: ipc.CodeUnknownAccount, Message: "no such account", Account: r.Account}
	}
	return ipc.TokenResponse{Account: "work", TokenType: "Bearer", AccessToken: "t0k3n",
		Authorization: "Bearer t0k3n", ExpiresIn: 300, Server: "https://cloud.example"}, nil
}

func (exampleBackend) Exchange(context.Context, ipc.Peer, ipc.ExchangeRequest) (ipc.TokenResponse, error) {
	return ipc.TokenResponse{}, &ipc.Error{Code: ipc.CodeInvalidRequest, Message: "not in this example"}
}

func (exampleBackend) Login(_ context.Context, _ ipc.Peer, r ipc.LoginRequest, progress func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
	progress(ipc.LoginEvent{Type: "open_url", URL: "https://cloud.example/login"})
	return ipc.LoginEvent{State: "signed-in", User: "alice"}, nil
}

func (exampleBackend) Revoke(_ context.Context, _ ipc.Peer, r ipc.RevokeRequest) (ipc.RevokeResponse, error) {
	return ipc.RevokeResponse{Account: r.Account, SecretDeleted: true}, nil
}

// The agent listens and serves; a program of the same user asks for a
// token. Real programs use ipc.SocketPath() for the path.
func Example() {
	dir, err := os.MkdirTemp("", "nc")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ncagent", "agent.sock")

	// Agent side.
	ln, err := ipc.Listen(path)
	if err != nil {
		log.Fatal(err)
	}
	srv := ipc.NewServer(exampleBackend{}, ipc.ServerOptions{
		Logger: slog.New(slog.DiscardHandler),
		Socket: path,
	})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()

	// Client side.
	c := ipc.NewClient(path)
	defer c.Close()
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tok, err := c.Token(rctx, ipc.TokenRequest{Account: "work", ClientHint: "example"})
	if err != nil {
		log.Fatal(err)
	}
	// tok.Authorization is a secret: send it, never print or log it.
	fmt.Println(tok.Account, tok.TokenType, tok.ExpiresIn)

	_, err = c.Token(rctx, ipc.TokenRequest{Account: "home"})
	if e, ok := err.(*ipc.Error); ok {
		fmt.Println(e.Status, e.Code)
	}

	final, err := c.Login(rctx, ipc.LoginRequest{Account: "work"}, func(ev ipc.LoginEvent) {
		fmt.Println("open", ev.URL)
	})
	fmt.Println(final.Type, final.User, err)

	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// work Bearer 300
	// 404 unknown_account
	// open https://cloud.example/login
	// done alice <nil>
}
