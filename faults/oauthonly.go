package faults

// The oauth-only fault: the provider disabled password ("basic") login;
// only OAuth2 (XOAUTH2, OAUTHBEARER) works, like Microsoft 365 and Google
// Workspace accounts after basic authentication was turned off. A right
// password gets "534 5.7.9 Application-specific password required"; a
// wrong one still gets the ordinary failure, as at Google.

import (
	"slices"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

func init() {
	Register(Definition{
		Name:    "oauth-only",
		Summary: "password login is disabled; XOAUTH2/OAUTHBEARER are offered and required (534 5.7.9 style refusal)",
		Layer:   LayerAuth,
		Apply: func(l *lab.Lab, sel *Selection, _ any) error {
			for _, svc := range sel.Services {
				mechs := svc.Mechanisms
				if mechs == nil {
					mechs = []string{auth.MechPlain}
					if svc.Protocol == "smtp" {
						mechs = append(mechs, auth.MechLogin)
					}
				}
				for _, m := range []string{auth.MechXOAuth2, auth.MechOAuthBearer} {
					if !slices.Contains(mechs, m) {
						mechs = append(mechs, m)
					}
				}
				svc.Mechanisms = mechs
			}
			services := map[string]bool{}
			for _, svc := range sel.Services {
				services[svc.Name] = true
			}
			l.AuthPolicies = append(l.AuthPolicies, forAccounts(labAccounts{l.Store}, nil,
				func(req *auth.Request, u *mailstore.User, err error) (*mailstore.User, error) {
					if err != nil || req.IsOAuth() || !services[req.Service] {
						return u, err
					}
					return nil, &auth.Error{Kind: auth.BasicAuthDisabled}
				}))
			return nil
		},
	})
}
