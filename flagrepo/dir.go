package flagrepo

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DirFiles lists the files of a working directory as Files, for validating
// uncommitted work. The .git directory is skipped; symbolic links are listed
// (and refused by Load), never followed.
func DirFiles(dir string) ([]File, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open flag repository: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("open flag repository: %s is not a directory", dir)
	}
	var files []File
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		f := File{Path: rel, Size: -1}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			f.Mode = ModeSymlink
		case t.IsRegular():
			f.Mode = ModeRegular
			if fi, err := d.Info(); err == nil {
				f.Size = fi.Size()
			}
		default:
			f.Mode = ModeOther
		}
		if len(files) >= MaxFiles {
			return fmt.Errorf("more than %d files under %s", MaxFiles, dir)
		}
		f.Read = func() ([]byte, error) { return os.ReadFile(p) }
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return files, nil
}

// WorkingRevision describes a snapshot read from a working directory rather
// than a commit.
func WorkingRevision() Revision {
	return Revision{Time: time.Now().UTC(), Author: "working directory"}
}
