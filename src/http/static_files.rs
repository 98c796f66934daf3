//! `--static-dir`: a frontend's own files at `/`, served as Node's `express.static` serves them,
//! so a frontend written for a Node app (an `index.html` that loads `/socket.io/socket.io.js`
//! from the same origin) runs unchanged. The rule, all of it here:
//!
//! - `GET` and `HEAD` only. `/` and `/dir/` serve that directory's `index.html`; `/dir` redirects
//!   (301) to `/dir/`; a directory is never listed.
//! - Nothing outside the directory is ever served: a path with a segment that decodes to `.` or
//!   `..`, or holds `/`, `\` or NUL (encoded or not) is refused before the file system is asked,
//!   and what is found is refused unless, its symlinks resolved, it is still inside the directory.
//! - Dotfiles, and whatever is in a dot-directory, are not served (express's `dotfiles: 'ignore'`).
//! - chatoxide's own routes win: this is the router's fallback, reached only by a path no route
//!   has, and the prefixes chatoxide owns (`/api/`, `/socket.io/`) are never looked up.
//! - What is not served here falls through to `otherwise`: the chat page's routes, or a 404.
//!
//! The bytes, `Content-Length`, ranges, `Last-Modified` and `If-Modified-Since` are tower-http's
//! `ServeFile`; this module adds what it lacks: the weak `ETag` that `send` (express.static's
//! engine) makes, `If-None-Match`, and `send`'s content types and cache header.

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mime_guess::mime;
use percent_encoding::percent_decode_str;
use std::fs::Metadata;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;
use tower::ServiceExt;
use tower_http::services::ServeFile;

/// First segments of chatoxide's own paths: never looked up in the directory, so a file named
/// like a route (`api/rooms/x/messages`, `socket.io/socket.io.js`) is never served in its place.
const OWN_PREFIXES: [&str; 2] = ["api", "socket.io"];

/// What express.static sends: a cache may keep the file, and must ask (a cheap 304) before use.
const CACHE_CONTROL: &str = "public, max-age=0";

/// The directory of files served at `/`.
#[derive(Clone, Debug)]
pub struct StaticDir {
    /// Absolute, its symlinks resolved: every file served is below it.
    root: Arc<Path>,
}

impl StaticDir {
    /// The directory at `path`, checked once at start: one that does not exist or is no
    /// directory is an error that names it.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let root = std::fs::canonicalize(path)
            .with_context(|| format!("static directory {}", path.display()))?;
        anyhow::ensure!(
            root.is_dir(),
            "static directory {} is not a directory",
            path.display()
        );
        Ok(Self { root: root.into() })
    }

    /// Serves `request` from the directory, or hands it to `otherwise`.
    async fn serve(self, request: Request, otherwise: Router) -> Response {
        let readable = matches!(*request.method(), Method::GET | Method::HEAD);
        let found = match readable.then(|| wanted(request.uri().path())).flatten() {
            Some(wanted) => self.find(&wanted).await,
            None => Found::Nothing,
        };
        match found {
            Found::File { path, meta } => file(request, &path, &meta).await,
            Found::Directory => redirect(request.uri()),
            Found::Nothing => {
                let Ok(response) = otherwise.oneshot(request).await;
                response
            }
        }
    }

    /// What `wanted` names in the directory.
    async fn find(&self, wanted: &Wanted) -> Found {
        let Some((path, meta)) = self.inside(&self.root.join(&wanted.below)).await else {
            return Found::Nothing;
        };
        if meta.is_dir() && !wanted.directory {
            return Found::Directory;
        }
        let (path, meta) = if meta.is_dir() {
            match self.inside(&path.join("index.html")).await {
                Some(index) => index,
                None => return Found::Nothing,
            }
        } else if wanted.directory {
            // `/style.css/`: a file is no directory (as `send` answers it).
            return Found::Nothing;
        } else {
            (path, meta)
        };
        // Regular files only: a FIFO or a device would hang or stream for ever.
        if meta.is_file() {
            Found::File { path, meta }
        } else {
            Found::Nothing
        }
    }

    /// `path` with its symlinks resolved, and what it is, if that is still below the root and
    /// has no dot-name there. A symlink that points outside the directory is refused (express
    /// would follow it): what is served is what the directory holds, so a link to `/etc` or to
    /// `../.env` put there by a build tool never publishes it. A link within the directory is
    /// followed.
    async fn inside(&self, path: &Path) -> Option<(PathBuf, Metadata)> {
        let real = tokio::fs::canonicalize(path).await.ok()?;
        let below = real.strip_prefix(&self.root).ok()?;
        if below
            .iter()
            .any(|name| name.as_encoded_bytes().starts_with(b"."))
        {
            return None;
        }
        let meta = tokio::fs::metadata(&real).await.ok()?;
        Some((real, meta))
    }
}

/// The fallback of the app's router: the directory's files, else `otherwise`.
pub fn router<S: Clone + Send + Sync + 'static>(dir: StaticDir, otherwise: Router) -> Router<S> {
    Router::new().fallback(move |request: Request| dir.clone().serve(request, otherwise.clone()))
}

/// What a request finds in the directory.
enum Found {
    File {
        path: PathBuf,
        meta: Metadata,
    },
    /// A directory, asked for without its trailing `/`.
    Directory,
    Nothing,
}

/// A request's path taken apart.
#[derive(Debug, PartialEq)]
struct Wanted {
    /// Below the root: plain names only (see [`plain`]).
    below: PathBuf,
    /// The path ended with `/`: a directory is meant.
    directory: bool,
}

/// The request path (percent-encoded, as it came) as a path below the root, or `None` when it
/// may not be served from the directory. Empty segments (`//`) are skipped.
fn wanted(path: &str) -> Option<Wanted> {
    let mut below = PathBuf::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let name = percent_decode_str(raw).decode_utf8().ok()?;
        let own = below.as_os_str().is_empty() && OWN_PREFIXES.contains(&&*name);
        if own || !plain(&name) {
            return None;
        }
        below.push(&*name);
    }
    Some(Wanted {
        below,
        directory: path.ends_with('/'),
    })
}

/// A file or directory name that may be served: one normal component with no separator (`/`,
/// `\`) and no NUL in it, not starting with a dot (which covers `.` and `..`).
fn plain(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && matches!(
            (parts.next(), parts.next()),
            (Some(Component::Normal(_)), None)
        )
}

/// The file, with `send`'s headers; 304 when the browser's copy is this one.
async fn file(mut request: Request, path: &Path, meta: &Metadata) -> Response {
    let tag = validator(meta);
    if let Some(asked) = request.headers_mut().remove(header::IF_NONE_MATCH) {
        let asked = asked.to_str().unwrap_or_default();
        if tag.as_deref().is_some_and(|tag| none_match(asked, tag)) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            revalidation(response.headers_mut(), tag);
            return response;
        }
        // With If-None-Match, If-Modified-Since is not looked at (RFC 9110, 13.2.2).
        request.headers_mut().remove(header::IF_MODIFIED_SINCE);
    }
    let Ok(mut response) = ServeFile::new(path).oneshot(request).await;
    let status = response.status();
    if status.is_server_error() {
        tracing::warn!(path = %path.display(), %status, "a static file could not be read");
    }
    if !(status.is_success() || status == StatusCode::NOT_MODIFIED) {
        return response.map(Body::new);
    }
    if status.is_success() {
        (response.headers_mut()).insert(header::CONTENT_TYPE, content_type(path));
    }
    revalidation(response.headers_mut(), tag);
    response.map(Body::new)
}

/// What a 200 and a 304 both carry: how a cache may keep the file, and its ETag.
fn revalidation(headers: &mut HeaderMap, tag: Option<String>) {
    let cache = HeaderValue::from_static(CACHE_CONTROL);
    headers.insert(header::CACHE_CONTROL, cache);
    if let Some(tag) = tag.and_then(|tag| HeaderValue::from_str(&tag).ok()) {
        headers.insert(header::ETAG, tag);
    }
}

/// The file's ETag, if its modification time is known.
fn validator(meta: &Metadata) -> Option<String> {
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(etag(meta.len(), modified.as_millis()))
}

/// `send`'s weak validator: `W/"<size>-<mtime in ms>"`, both in hex.
fn etag(size: u64, modified_ms: u128) -> String {
    format!("W/\"{size:x}-{modified_ms:x}\"")
}

/// Whether an `If-None-Match` list is `*` or names `tag`, compared weakly (as `fresh` does: a
/// `W/` on either side is ignored).
fn none_match(list: &str, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    list.trim() == "*" || list.split(',').any(|t| opaque(t) == opaque(tag))
}

/// `/dir` to `/dir/`, as serve-static redirects a directory: 301, the query kept.
fn redirect(uri: &Uri) -> Response {
    match HeaderValue::from_str(&location(uri)) {
        Ok(to) => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, to)]).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The path with a `/` added. Leading slashes are collapsed into one, so the location stays on
/// this site: `//evil.example/` would be another.
fn location(uri: &Uri) -> String {
    let path = format!("/{}/", uri.path().trim_start_matches('/'));
    match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    }
}

/// The type by the file's extension (`application/octet-stream` when unknown), with
/// `charset=utf-8` for text, JavaScript and JSON, as `send` gives it.
fn content_type(path: &Path) -> HeaderValue {
    let guess = mime_guess::from_path(path).first_or_octet_stream();
    let text = guess.type_() == mime::TEXT
        || (guess.type_() == mime::APPLICATION
            && matches!(guess.subtype().as_str(), "javascript" | "json"));
    let value = if text {
        format!("{}; charset=utf-8", guess.essence_str())
    } else {
        guess.essence_str().to_owned()
    };
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn below(path: &str) -> Option<(String, bool)> {
        wanted(path).map(|w| (w.below.display().to_string(), w.directory))
    }

    #[test]
    fn a_path_is_plain_names_below_the_root() {
        assert_eq!(below("/"), Some((String::new(), true)));
        assert_eq!(below("/style.css"), Some(("style.css".into(), false)));
        assert_eq!(below("/nested/"), Some(("nested".into(), true)));
        assert_eq!(below("//a//b.js"), Some(("a/b.js".into(), false)));
        assert_eq!(below("/caf%C3%A9.txt"), Some(("café.txt".into(), false)));
        assert_eq!(below("/apis/x"), Some(("apis/x".into(), false)));
        assert_eq!(below("/docs/api/x"), Some(("docs/api/x".into(), false)));
        // Decoded once: `%252e` is a file named `%2e`, not a dot.
        assert_eq!(below("/%252e%252e/x"), Some(("%2e%2e/x".into(), false)));
    }

    #[test]
    fn nothing_outside_the_root_can_be_named() {
        for path in [
            "/../Cargo.toml",
            "/a/../../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/%2E%2E/Cargo.toml",
            "/..%2fCargo.toml",
            "/a%2f..%2f..%2fCargo.toml",
            "/%5c..%5cCargo.toml",
            "/a\\..\\b",
            "/%2fetc%2fpasswd",
            "/a%00.html",
            "/./index.html",
            "/%ff.html",
        ] {
            assert_eq!(wanted(path), None, "{path}");
        }
    }

    #[test]
    fn dotfiles_and_chatoxides_own_paths_are_not_looked_up() {
        for path in [
            "/.env",
            "/%2eenv",
            "/a/.git/config",
            "/api/rooms/x/messages",
            "/%61pi/rooms/x/messages",
            "/api",
            "/socket.io/socket.io.js",
        ] {
            assert_eq!(wanted(path), None, "{path}");
        }
    }

    #[test]
    fn the_etag_is_sends_weak_size_and_mtime_in_hex() {
        assert_eq!(etag(0, 0), "W/\"0-0\"");
        assert_eq!(etag(1234, 1_700_000_000_123), "W/\"4d2-18bcfe5687b\"");
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let tag = "W/\"4d2-18bcfe5687b\"";
        assert!(none_match(tag, tag));
        assert!(none_match("\"4d2-18bcfe5687b\"", tag));
        assert!(none_match("\"old\", W/\"4d2-18bcfe5687b\"", tag));
        assert!(none_match(" * ", tag));
        assert!(!none_match("W/\"4d2-0\"", tag));
        assert!(!none_match("", tag));
    }

    #[test]
    fn a_directory_redirects_to_its_slash_on_this_site() {
        let at = |uri: &'static str| location(&Uri::from_static(uri));
        assert_eq!(at("/nested"), "/nested/");
        assert_eq!(at("/nested?x=1"), "/nested/?x=1");
        assert_eq!(at("//evil.example"), "/evil.example/");
    }

    #[test]
    fn text_has_its_charset_and_the_unknown_is_octets() {
        let of = |name: &str| content_type(Path::new(name));
        assert_eq!(of("index.html"), "text/html; charset=utf-8");
        assert_eq!(of("style.css"), "text/css; charset=utf-8");
        assert!(
            of("app.js")
                .to_str()
                .is_ok_and(|t| t.ends_with("javascript; charset=utf-8"))
        );
        assert_eq!(of("data.json"), "application/json; charset=utf-8");
        assert_eq!(of("logo.png"), "image/png");
        assert_eq!(of("healthz"), "application/octet-stream");
    }

    /// A directory holding `index.html`, `nested/index.html`, `empty/` and `.env`, and links to
    /// a file and a folder outside it, to a file inside and to the dotfile; and what each path
    /// finds there.
    async fn found(paths: &[&str]) -> Vec<String> {
        let (Ok(outside), Ok(dir)) = (tempfile::tempdir(), tempfile::tempdir()) else {
            panic!("temp dirs");
        };
        let (out, root) = (outside.path(), dir.path());
        let made: std::io::Result<()> = (|| {
            use std::os::unix::fs::symlink;
            std::fs::create_dir_all(root.join("nested"))?;
            std::fs::create_dir_all(root.join("empty"))?;
            for (name, body) in [("index.html", "home"), ("nested/index.html", "nested")] {
                std::fs::write(root.join(name), body)?;
            }
            std::fs::write(root.join(".env"), "dot")?;
            std::fs::write(out.join("secret.txt"), "secret")?;
            symlink(out.join("secret.txt"), root.join("out.txt"))?;
            symlink(out, root.join("outdir"))?;
            symlink(root.join("index.html"), root.join("in.html"))?;
            symlink(root.join(".env"), root.join("env.txt"))
        })();
        assert!(made.is_ok(), "{made:?}");
        let Ok(static_dir) = StaticDir::open(root) else {
            panic!("the directory opens");
        };
        let mut found = Vec::new();
        for path in paths {
            found.push(match wanted(path) {
                None => "refused".into(),
                Some(wanted) => match static_dir.find(&wanted).await {
                    Found::File { path, .. } => std::fs::read_to_string(path).unwrap_or_default(),
                    Found::Directory => "redirect".into(),
                    Found::Nothing => "nothing".into(),
                },
            });
        }
        found
    }

    #[tokio::test]
    async fn a_directory_serves_its_index_and_is_never_listed() {
        let paths = [
            "/",
            "/nested/",
            "/nested",
            "/empty/",
            "/index.html/",
            "/missing.css",
        ];
        let found = found(&paths).await;
        let expected = [
            "home", "nested", "redirect", "nothing", "nothing", "nothing",
        ];
        assert_eq!(found, expected);
    }

    #[tokio::test]
    async fn links_are_followed_only_within_the_directory() {
        let paths = [
            "/in.html",
            "/out.txt",
            "/outdir/secret.txt",
            "/env.txt",
            "/.env",
        ];
        let found = found(&paths).await;
        assert_eq!(found, ["home", "nothing", "nothing", "nothing", "refused"]);
    }

    #[test]
    fn a_missing_directory_or_a_file_is_an_error_naming_it() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("a temp dir");
        };
        let missing = dir.path().join("nope");
        let err = StaticDir::open(&missing)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"));
        assert!(err.as_ref().is_err_and(|e| e.contains("nope")), "{err:?}");
        let file = dir.path().join("file");
        assert!(std::fs::write(&file, "x").is_ok());
        let err = StaticDir::open(&file)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"));
        assert!(
            err.as_ref().is_err_and(|e| e.contains("not a directory")),
            "{err:?}"
        );
    }
}
