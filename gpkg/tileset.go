package gpkg

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	// BLAKE3's XOF expands each tile's hash to the TileSet's lanes. This
	// module rather than github.com/zeebo/blake3: it computes output blocks
	// 16 (AVX-512) or 8 (AVX2) at a time, so expanding 32 bytes to 2 KiB
	// takes about half the time of SHAKE128 here, where zeebo's XOF,
	// producing one block at a time, was no faster than SHAKE128 (see
	// docs/performance.md). Maintained by the author of BLAKE3's Go port,
	// pure Go with generated assembly (no cgo).
	"lukechampine.com/blake3/guts"
)

// ContentDigestAlgorithm names the content digest this package computes
// (TileSet, ContentDigest): LtHash16 with 1024 lanes over SHA-256 of each
// tile's encoding, expanded with BLAKE3's XOF. The worker records it
// beside the digest in each package's metadata, so a reader can tell it
// from packages that carry an earlier digest (see docs/architecture.md).
const ContentDigestAlgorithm = "lthash16-sha256-blake3"

// tileSetLanes is the number of 16-bit lanes of a TileSet: LtHash16 with
// 1024 lanes, the parameters Lewi et al. ("Securing Update Propagation with
// Homomorphic Hashing", 2019) give about 200 bits of security against
// collisions, as deployed at Meta.
const tileSetLanes = 1024

// TileSetSize is the size of a TileSet's binary form.
const TileSetSize = 2 * tileSetLanes

// EmptyContentDigest is the content digest of a table without tiles: the
// SHA-256 of TileSetSize zero bytes.
const EmptyContentDigest = "e5a00aa9991ac8a5ee3109844d84a55583bd20572ad3ffcd42792f3c36b183ad"

// TileSet is a homomorphic multiset hash of tiles (LtHash16, Bellare and
// Micciancio's LtHash with 16-bit lanes): each tile's encoding (see
// ContentDigest) is hashed with SHA-256, expanded to 1024 lanes with
// BLAKE3's extendable output (the SHA-256 as the input of unkeyed BLAKE3,
// the first 2048 output bytes, little-endian lanes), and added lane by
// lane modulo 2^16 (ContentDigestAlgorithm). Adding the sets of
// disjoint parts gives the set of their union, in any order, and a tile
// can be taken out again (Sub), which a digest over tiles in sorted order
// cannot offer: a package merged part by part has its digest without being
// read again. Finding two tile sets with the same TileSet is as hard as
// the short-integer-solution lattice problem that LtHash's security rests
// on. The zero value is the empty set.
type TileSet struct{ lanes [tileSetLanes]uint16 }

// AddTile adds the tile z/x/y with data to the set.
func (s *TileSet) AddTile(z, x, y int64, data []byte) { s.tile(z, x, y, data, 1) }

// SubTile removes the tile z/x/y with data from the set; the tile must
// have been added.
func (s *TileSet) SubTile(z, x, y int64, data []byte) { s.tile(z, x, y, data, 0xffff) } // 0xffff: -1 modulo 2^16

func (s *TileSet) tile(z, x, y int64, data []byte, sign uint16) {
	sum := tileSum(z, x, y, data)
	var lanes [TileSetSize]byte
	expand(&lanes, sum[:])
	s.addLanes(&lanes, sign)
}

// tileSum is the SHA-256 of a tile's encoding: its address and length,
// then its data.
func tileSum(z, x, y int64, data []byte) [sha256.Size]byte {
	var head [32]byte
	binary.BigEndian.PutUint64(head[0:], uint64(z))
	binary.BigEndian.PutUint64(head[8:], uint64(x))
	binary.BigEndian.PutUint64(head[16:], uint64(y))
	binary.BigEndian.PutUint64(head[24:], uint64(len(data)))
	h := sha256.New()
	h.Write(head[:])
	h.Write(data)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// addLanes adds a tile's expanded sum to the set (sign 1), or takes it
// out (sign 0xffff, -1 modulo 2^16).
func (s *TileSet) addLanes(lanes *[TileSetSize]byte, sign uint16) {
	for i := range s.lanes {
		s.lanes[i] += sign * binary.LittleEndian.Uint16(lanes[2*i:])
	}
}

// subSum takes out of the set the tile whose tileSum is sum.
func (s *TileSet) subSum(sum [sha256.Size]byte) {
	var lanes [TileSetSize]byte
	expand(&lanes, sum[:])
	s.addLanes(&lanes, 0xffff)
}

// Add adds the tiles of o, which holds none of s's, to s.
func (s *TileSet) Add(o *TileSet) {
	for i := range s.lanes {
		s.lanes[i] += o.lanes[i]
	}
}

// Digest is the content digest of the set: the SHA-256 of its binary
// form, as 64 lowercase hex digits.
func (s *TileSet) Digest() string {
	b, _ := s.MarshalBinary()
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// MarshalBinary returns the set's lanes, little-endian: TileSetSize bytes.
func (s *TileSet) MarshalBinary() ([]byte, error) {
	b := make([]byte, TileSetSize)
	for i, v := range s.lanes {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b, nil
}

// UnmarshalBinary sets s from the form MarshalBinary returns; other
// lengths wrap ErrCorrupt.
func (s *TileSet) UnmarshalBinary(b []byte) error {
	if len(b) != TileSetSize {
		return fmt.Errorf("%w: tile set of %d bytes, want %d", ErrCorrupt, len(b), TileSetSize)
	}
	for i := range s.lanes {
		s.lanes[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return nil
}

// expandBlock is how many bytes of BLAKE3 output one guts.CompressBlocks
// call produces.
const expandBlock = guts.MaxSIMD * guts.BlockSize

// expand sets out to the first TileSetSize bytes of the BLAKE3 XOF of
// seed (32 bytes, one block of one chunk), as blake3.New(32,
// nil).XOF().Read would, but without allocating and without the
// goroutines OutputReader.Read starts for outputs of more than
// expandBlock bytes: a tile's expansion is too small to share out, and
// the worker's cores are busy with other tiles.
func expand(out *[TileSetSize]byte, seed []byte) {
	n := guts.CompressChunk(seed, &guts.IV, 0, 0)
	n.Flags |= guts.FlagRoot
	for off := 0; off < TileSetSize; off += expandBlock {
		n.Counter = uint64(off / guts.BlockSize)
		guts.CompressBlocks((*[expandBlock]byte)(out[off:]), n)
	}
}
