package resumetoken_test

import (
	"errors"
	"fmt"

	"github.com/zrep/zrep/resumetoken"
)

func ExampleDecode() {
	// A token from zrepl's tests (ZoL 0.8.1, an incremental raw send).
	tok, err := resumetoken.Decode("1-1164f8d409-120-789c636064000310a501c49c50360710a715e5e7a69766a63040416445bb6a3cd7a2290a40363b92bafca4acd4e412060626a83a0cf9b4b4e2d412908c0e5c9e0d493ea9b224b51848f368eb61d55f920f714515bf9b3fc3c396ef0648f29c60f9bcc4dc54a07c516a414e414e62495a7e512ed0c812fde2a2648724b079dc0c087f26e7e71614a51617e76743c424a0ee81c9172596c3a41800dd2c2818")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s from %#x to %#x, raw %v\n", tok.ToName, tok.FromGUID, tok.ToGUID, tok.RawOK)

	// The checksum protects nothing: anyone can forge a token, and
	// Decode accepts it. The caller checks the fields.
	forged := *tok
	forged.ToName = "zreplplatformtest/secret@b"
	tok2, err := resumetoken.Decode(forged.Encode())
	fmt.Println(tok2.ToName, err)

	_, err = resumetoken.Decode("1-1164f8d409-120-789c")
	fmt.Println(errors.Is(err, resumetoken.ErrMalformed), err)
	// Output:
	// zreplplatformtest/src@b from 0x94a20a5f25877859 to 0xf784e1004f460f7a, raw true
	// zreplplatformtest/secret@b <nil>
	// true malformed resume token: checksum 1164f8d409 does not match the payload, whose checksum is 0
}
