//! Download + MD5 + atomic extraction against a loopback HTTP server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use md5::{Digest, Md5};
use vit_data::{Cifar, CifarKind, CifarLoadOptions, CifarSplit, DataError, download_cifar};

/// A .tar.gz in the official CIFAR-10 layout (1 record per batch).
fn cifar10_archive() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("cifar-10-batches-bin/{name}"), data).unwrap();
    };
    let record = |label: u8| {
        let mut r = vec![label];
        r.extend((0..3072).map(|i| (i % 251) as u8));
        r
    };
    for b in 1..=5 {
        add(&format!("data_batch_{b}.bin"), &record(b));
    }
    add("test_batch.bin", &record(0));
    add("batches.meta.txt", b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n");
    tar.into_inner().unwrap().finish().unwrap()
}

/// Serves `body` to every GET on 127.0.0.1 (`/missing` gets a 404); returns the base URL.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
            }
            let response = if request_line.contains("/missing") {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            } else {
                let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                    .into_bytes();
                r.extend_from_slice(&body);
                r
            };
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{addr}")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn download_checks_md5_and_extracts_atomically() {
    let archive = cifar10_archive();
    let md5 = format!("{:x}", Md5::digest(&archive));
    let base = serve(archive);
    let url = format!("{base}/cifar-10-binary.tar.gz");

    // Wrong checksum: error, nothing left behind.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let err = download_cifar(CifarKind::Cifar10, &root, Some(&url), Some("0123456789abcdef0123456789abcdef"), false)
        .unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err:?}");
    assert!(err.to_string().contains(&md5), "{err}");
    assert!(entries(&root).is_empty(), "left behind: {:?}", entries(&root));

    // HTTP error: says where to put the files by hand.
    let err = download_cifar(CifarKind::Cifar10, &root, Some(&format!("{base}/missing")), None, false).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("404") && msg.contains("cifar-10-batches-bin") && msg.contains("data_batch_1.bin"), "{msg}");
    assert!(entries(&root).is_empty());

    // Right checksum: extracted to root/cifar-10-batches-bin, loadable; a second call is a no-op.
    let folder = download_cifar(CifarKind::Cifar10, &root, Some(&url), Some(&md5), false).unwrap();
    assert_eq!(folder, root.join("cifar-10-batches-bin"));
    assert_eq!(entries(&root), vec!["cifar-10-batches-bin"]);
    // (1 record per file: synthetic, so without the official-size check)
    let train = Cifar::load_with(&root, CifarKind::Cifar10, CifarSplit::Train, &CifarLoadOptions::SYNTHETIC).unwrap();
    assert_eq!(train.labels(), &[1, 2, 3, 4, 5]);
    let again = download_cifar(CifarKind::Cifar10, &root, Some("http://127.0.0.1:1/unused"), None, false).unwrap();
    assert_eq!(again, folder);
}

#[test]
fn unreachable_server_explains_manual_download() {
    // Port 1 on loopback: connection refused, like being offline.
    let dir = tempfile::tempdir().unwrap();
    let err =
        download_cifar(CifarKind::Cifar10, dir.path(), Some("http://127.0.0.1:1/cifar-10-binary.tar.gz"), None, false)
            .unwrap_err()
            .to_string();
    let expected_dir = dir.path().join("cifar-10-batches-bin").display().to_string();
    assert!(err.contains(&expected_dir) && err.contains("batches.meta.txt"), "{err}");
    assert!(err.contains("http://127.0.0.1:1/cifar-10-binary.tar.gz"), "{err}");
}
