package lab

import (
	"errors"
	"net/http"
	"time"
)

// PublishHTTP serves body at path over plain HTTP on the lab's address and
// returns its URL, e.g. for a certificate's AIA caIssuers URL (RFC 5280
// §4.2.2.1). The HTTP server is bound on first use and serves until Close.
func (l *Lab) PublishHTTP(path string, body []byte, contentType string) (string, error) {
	if l.httpMux == nil {
		ln, err := listenTCP(l.Address, 0)
		if err != nil {
			return "", err
		}
		l.httpMux = http.NewServeMux()
		srv := &http.Server{Handler: l.httpMux, ReadHeaderTimeout: 5 * time.Second}
		l.httpURL = "http://" + ln.Addr().String()
		l.goServe("http", func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		l.onClose(srv.Close)
	}
	l.httpMux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Write(body)
	})
	return l.httpURL + path, nil
}
