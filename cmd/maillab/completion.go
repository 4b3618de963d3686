package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func init() { registerCommand(completionCommand()) }

// bashCompletion asks maillab itself for candidates (urfave/cli's hidden
// --generate-bash-completion flag): commands, flags and scenario names.
const bashCompletion = `# maillab completion for bash; load with: source <(maillab completion bash)
_maillab_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local words=("${COMP_WORDS[@]:0:$COMP_CWORD}")
  local opts
  if [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o default -F _maillab_complete maillab
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: `Completes commands, flags and scenario names.

   bash:  source <(maillab completion bash)        (or save it in /etc/bash_completion.d/maillab)
   zsh:   source <(maillab completion zsh)
   fish:  maillab completion fish > ~/.config/fish/completions/maillab.fish`,
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, "autoload -U +X bashcompinit && bashcompinit\n"+bashCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				fmt.Fprint(c.App.Writer, s)
			default:
				return usageErrorf("completion: name a shell: bash, zsh or fish")
			}
			return nil
		},
	}
}
