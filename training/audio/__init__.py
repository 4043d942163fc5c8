"""The audio track: decoding folders of labelled audio, the CNN-LSTM procedure and publishing."""
