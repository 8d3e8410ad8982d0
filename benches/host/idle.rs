//! Group 4 (`idle`): the host's resident memory once it is up and idle.

use std::time::Duration;

use serde_json::json;

use crate::clock::mono;
use crate::driver::Host;
use crate::fixtures::{data_dir_args, ext, tmpdir};
use crate::procfs;
use crate::table::{Table, Target};
use crate::Res;

pub fn bench_idle(t: &mut Table, runs: usize) {
    let g = "4";
    for with_echo in [false, true] {
        let label = if with_echo {
            "echo extension started"
        } else {
            "no extension"
        };
        let mut rss = Vec::new();
        let mut hwm = Vec::new();
        for _ in 0..runs {
            let dir = tmpdir("idle");
            let r = (|| -> Res<(f64, f64)> {
                let mut args = data_dir_args(dir.path());
                if with_echo {
                    args.extend(["--extension".into(), ext("echo")]);
                }
                let mut h = Host::spawn(&args, &[], dir.path(), "idle")?;
                h.wait_ready()?;
                if with_echo {
                    // Wait until the extension answered initialize.
                    let end = mono() + 10.0;
                    loop {
                        let v =
                            h.command(json!({"type": "get_available_models", "id": "m"}), 5.0)?;
                        let ok = v["models"].as_array().is_some_and(|m| {
                            m.iter()
                                .any(|x| x["id"] == "echo:echo:echo-1" && x["available"] == true)
                        });
                        if ok {
                            break;
                        }
                        if mono() > end {
                            return Err(format!("echo never became available: {v}"));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                } else {
                    h.command(json!({"type": "get_state", "id": "s"}), 5.0)?;
                }
                std::thread::sleep(Duration::from_millis(100));
                let m = procfs::rss_and_peak_mib(h.pid)?;
                h.close(5.0)?;
                Ok(m)
            })();
            match r {
                Ok((a, b)) => {
                    rss.push(a);
                    hwm.push(b);
                }
                Err(e) => return t.fail(g, label, &e),
            }
        }
        t.add(
            g,
            &format!("idle after `ready`, {label}: host VmRSS"),
            "MiB",
            &rss,
            1,
            Target::AtMost(8.0),
            "≤ 8 MB",
        );
        t.add(
            g,
            &format!("… {label}: host VmHWM"),
            "MiB",
            &hwm,
            1,
            Target::AtMost(8.0),
            "≤ 8 MB",
        );
    }
}
