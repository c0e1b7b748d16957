//! Flags of the registry commands (`pull`, `push`, `login`, `logout`, `search`), as Docker
//! spells them.

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Skip image verification
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub disable_content_trust: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Skip image signing
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub disable_content_trust: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG]
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// SERVER (default: Docker Hub)
    pub server: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// SERVER (default: Docker Hub)
    pub server: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// TERM
    pub term: String,
}
