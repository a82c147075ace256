package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	crypto_pb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// maxIdentityFileSize bounds what LoadOrCreateIdentity reads: a marshalled
// Ed25519 key is 68 bytes, so anything much larger is not a key file.
const maxIdentityFileSize = 4 << 10

// IdentityError reports an identity file that exists but cannot be used. The
// file is never replaced: a peer's identity is its standing in the network,
// and silently minting a new one would throw that away.
type IdentityError struct {
	Path   string
	Reason string
	Err    error
}

func (e *IdentityError) Error() string {
	msg := fmt.Sprintf("identity file %s: %s", e.Path, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + " (the file was left untouched; fix it, or move it away to create a new identity)"
}

func (e *IdentityError) Unwrap() error { return e.Err }

// LoadOrCreateIdentity returns the Ed25519 private key stored at path,
// creating a new key there (mode 0600, written atomically) if no file exists.
// A file that exists but is unreadable, too open (readable by group or
// others), corrupt, or holds a key of another type is an *IdentityError.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	if path == "" {
		return nil, errors.New("identity path is empty")
	}
	key, err := loadIdentity(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key, _, err = crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	if err := writeIdentity(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created the file first: use its key.
			return loadIdentity(path)
		}
		return nil, err
	}
	return key, nil
}

func loadIdentity(path string) (crypto.PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, &IdentityError{Path: path, Reason: "cannot open", Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &IdentityError{Path: path, Reason: "cannot stat", Err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, &IdentityError{Path: path, Reason: "not a regular file"}
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, &IdentityError{Path: path, Reason: fmt.Sprintf("mode %#o lets others read the private key; it must be 0600", perm)}
	}
	if st.Size() > maxIdentityFileSize {
		return nil, &IdentityError{Path: path, Reason: fmt.Sprintf("corrupt: %d bytes is too large for a key", st.Size())}
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, &IdentityError{Path: path, Reason: "cannot read", Err: err}
	}
	return decodeIdentity(path, data)
}

func decodeIdentity(path string, data []byte) (crypto.PrivKey, error) {
	key, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, &IdentityError{Path: path, Reason: "corrupt: not a libp2p private key", Err: err}
	}
	if key.Type() != crypto_pb.KeyType_Ed25519 {
		return nil, &IdentityError{Path: path, Reason: fmt.Sprintf("holds a %s key; shoal identities are Ed25519", key.Type())}
	}
	// Check the key is internally consistent by signing and verifying.
	msg := []byte("shoal identity self-check")
	sig, err := key.Sign(msg)
	if err != nil {
		return nil, &IdentityError{Path: path, Reason: "corrupt: key cannot sign", Err: err}
	}
	if ok, err := key.GetPublic().Verify(msg, sig); err != nil || !ok {
		return nil, &IdentityError{Path: path, Reason: "corrupt: private and public halves do not match", Err: err}
	}
	return key, nil
}

// writeIdentity writes key to path atomically: a temporary file in the same
// directory is written, synced and then hard-linked to path, which fails with
// fs.ErrExist rather than replace a file that appeared in the meantime.
func writeIdentity(path string, key crypto.PrivKey) error {
	data, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal identity: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create identity directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".identity-*.tmp")
	if err != nil {
		return fmt.Errorf("create identity file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("create identity file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write identity file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync identity file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close identity file: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("install identity file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
