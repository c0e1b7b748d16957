//! Arguments of commands that later work fills in: they parse anything and refuse to run,
//! so no command pretends to work.

/// Accepts any arguments; running it reports that the command is not implemented yet.
#[derive(Debug, clap::Args)]
pub struct Pending {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}
